// FaultVfs: a SQLite VFS for tests that makes writes and syncs of chosen database files fail
// on command, the way LevelDB's tests inject faults through their Env. Install() makes it the
// process's default VFS, wrapping the real one, so production code opens files as it always
// does; nothing fails until a test arms a fault.
//
// SQLite's VFS registry is process-wide, so the armed faults are too: tests that use this must
// not run their cases in parallel inside one process (GoogleTest runs them one at a time).
// Thread-safe.
#pragma once

#include <string>

namespace custody::store::testing {

enum class Fault {
  kDiskFull,  // xWrite answers SQLITE_FULL (ENOSPC)
  kIoError,   // xWrite and xSync answer SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC (EIO)
};

class FaultVfs {
 public:
  // Registers the VFS as the default (idempotent).
  static void Install();
  // Writes (and, for kIoError, syncs) of every file whose path contains `path_part` fail from
  // now on, the database and its -wal/-journal alike. Replaces any armed fault.
  static void Fail(const std::string& path_part, Fault fault);
  // Nothing fails any more.
  static void Clear();
  // Writes and syncs refused since Install().
  static int Refused();
};

}  // namespace custody::store::testing
