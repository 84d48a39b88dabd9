// Key files on disk: PEM text written with mode 0600 and never overwritten silently.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

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

// Reads a secret (a key, a shared secret): `path` must be a regular file of mode 0600 or
// stricter, checked on the descriptor read (not on whatever the path names a moment later), and
// at most `max_bytes` long. Errors name `what` (e.g. "login.private_key_file") and the file by its
// base name only, never its contents: NotFound (cannot open), InvalidArgument (not a regular
// file, too large), FailedPrecondition (its mode), Unavailable (a read error). The caller wipes
// the text once it has parsed it (OPENSSL_cleanse).
Result<std::string> ReadSecretFile(const std::string& path, std::string_view what,
                                   size_t max_bytes);

// Loads the Ed25519 PKCS#8 PEM key at `path`, creating it (mode 0600) if it does not exist.
Result<Ed25519PrivateKey> LoadOrCreateEd25519Key(const std::string& path);

}  // namespace custody::crypto
