// Key files on disk: PEM text written with mode 0600 and never overwritten silently.
#pragma once

#include <string>

#include "common/status.h"
#include "crypto/ed25519.h"

namespace custody::crypto {

// Creates `path` with mode 0600 and writes `contents`, fsyncing it. Fails with AlreadyExists if
// the file exists.
Status WriteSecretFile(const std::string& path, std::string_view contents);

// Creates `path` empty with mode 0600 if it does not exist, so a database SQLite then opens
// there (and the -wal and -shm files SQLite gives the database's mode) is never readable by
// group or others, whatever the process's umask. An existing file is left as it is.
Status CreatePrivateFileIfMissing(const std::string& path);

// Reads a whole file.
Result<std::string> ReadFileToString(const std::string& path);

// Loads the Ed25519 PKCS#8 PEM key at `path`, creating it (mode 0600) if it does not exist.
Result<Ed25519PrivateKey> LoadOrCreateEd25519Key(const std::string& path);

}  // namespace custody::crypto
