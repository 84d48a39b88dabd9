#include "store/testing/fault_vfs.h"

#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace custody::store::testing {
namespace {

// The registry is process-wide (see the header), so this state is too.
std::mutex g_mu;
sqlite3_vfs* g_real = nullptr;  // guarded by g_mu (written once)
sqlite3_vfs g_vfs;              // guarded by g_mu (written once)
std::string g_part;             // guarded by g_mu
Fault g_fault = Fault::kDiskFull;
std::atomic<bool> g_armed{false};
std::atomic<int> g_refused{0};

struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real;  // follows this struct in the same allocation
  std::string* path;   // owned
};

FaultFile* F(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }

// SQLITE_OK, or the error code the armed fault gives this file for this operation.
int FaultFor(sqlite3_file* f, bool sync) {
  if (!g_armed.load()) return SQLITE_OK;
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_armed.load() || F(f)->path->find(g_part) == std::string::npos) return SQLITE_OK;
  if (g_fault == Fault::kDiskFull) {
    if (sync) return SQLITE_OK;
    ++g_refused;
    return SQLITE_FULL;
  }
  ++g_refused;
  return sync ? SQLITE_IOERR_FSYNC : SQLITE_IOERR_WRITE;
}

int Close(sqlite3_file* f) {
  int rc = F(f)->real->pMethods ? F(f)->real->pMethods->xClose(F(f)->real) : SQLITE_OK;
  delete F(f)->path;
  return rc;
}
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return F(f)->real->pMethods->xRead(F(f)->real, buf, n, off);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (int rc = FaultFor(f, false); rc != SQLITE_OK) return rc;
  return F(f)->real->pMethods->xWrite(F(f)->real, buf, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = FaultFor(f, false); rc != SQLITE_OK) return rc;
  return F(f)->real->pMethods->xTruncate(F(f)->real, size);
}
int Sync(sqlite3_file* f, int flags) {
  if (int rc = FaultFor(f, true); rc != SQLITE_OK) return rc;
  return F(f)->real->pMethods->xSync(F(f)->real, flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return F(f)->real->pMethods->xFileSize(F(f)->real, size);
}
int Lock(sqlite3_file* f, int l) { return F(f)->real->pMethods->xLock(F(f)->real, l); }
int Unlock(sqlite3_file* f, int l) { return F(f)->real->pMethods->xUnlock(F(f)->real, l); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return F(f)->real->pMethods->xCheckReservedLock(F(f)->real, out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return F(f)->real->pMethods->xFileControl(F(f)->real, op, arg);
}
int SectorSize(sqlite3_file* f) { return F(f)->real->pMethods->xSectorSize(F(f)->real); }
int DeviceCharacteristics(sqlite3_file* f) {
  return F(f)->real->pMethods->xDeviceCharacteristics(F(f)->real);
}
int ShmMap(sqlite3_file* f, int pg, int pgsz, int extend, void volatile** out) {
  return F(f)->real->pMethods->xShmMap(F(f)->real, pg, pgsz, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return F(f)->real->pMethods->xShmLock(F(f)->real, offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { F(f)->real->pMethods->xShmBarrier(F(f)->real); }
int ShmUnmap(sqlite3_file* f, int del) { return F(f)->real->pMethods->xShmUnmap(F(f)->real, del); }
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return F(f)->real->pMethods->xFetch(F(f)->real, off, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return F(f)->real->pMethods->xUnfetch(F(f)->real, off, p);
}

// Version 3 methods; the wrapped file's own version decides which of them may be called, so
// the open below copies iVersion from it.
const sqlite3_io_methods kMethods = {3,
                                     Close,
                                     Read,
                                     Write,
                                     Truncate,
                                     Sync,
                                     FileSize,
                                     Lock,
                                     Unlock,
                                     CheckReservedLock,
                                     FileControl,
                                     SectorSize,
                                     DeviceCharacteristics,
                                     ShmMap,
                                     ShmLock,
                                     ShmBarrier,
                                     ShmUnmap,
                                     Fetch,
                                     Unfetch};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultFile* ff = F(file);
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  ff->path = new std::string(name ? name : "");
  sqlite3_vfs* real = static_cast<sqlite3_vfs*>(vfs->pAppData);
  int rc = real->xOpen(real, name, ff->real, flags, out_flags);
  if (rc != SQLITE_OK || ff->real->pMethods == nullptr) {
    delete ff->path;
    ff->path = nullptr;
    ff->base.pMethods = nullptr;
    return rc;
  }
  // One io_methods table per version the real file speaks.
  static sqlite3_io_methods by_version[4];
  static std::once_flag once;
  std::call_once(once, [] {
    for (int v = 1; v <= 3; ++v) {
      by_version[v] = kMethods;
      by_version[v].iVersion = v;
    }
  });
  int v = ff->real->pMethods->iVersion;
  ff->base.pMethods = &by_version[v < 1 ? 1 : (v > 3 ? 3 : v)];
  return SQLITE_OK;
}

// The rest of the VFS is the real one's, called with the real VFS (its methods may read their
// own pAppData).
int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* DlOpen(sqlite3_vfs*, const char* name) { return g_real->xDlOpen(g_real, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_real->xDlError(g_real, n, out); }
void (*DlSym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return g_real->xDlSym(g_real, h, sym);
}
void DlClose(sqlite3_vfs*, void* h) { g_real->xDlClose(g_real, h); }
int Randomness(sqlite3_vfs*, int n, char* out) { return g_real->xRandomness(g_real, n, out); }
int Sleep(sqlite3_vfs*, int us) { return g_real->xSleep(g_real, us); }
int CurrentTime(sqlite3_vfs*, double* out) { return g_real->xCurrentTime(g_real, out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return g_real->xGetLastError(g_real, n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

}  // namespace

void FaultVfs::Install() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_real != nullptr) return;
  g_real = sqlite3_vfs_find(nullptr);
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real->szOsFile;
  g_vfs.mxPathname = g_real->mxPathname;
  g_vfs.zName = "custody-fault";
  g_vfs.pAppData = g_real;
  g_vfs.xOpen = Open;
  g_vfs.xDelete = Delete;
  g_vfs.xAccess = Access;
  g_vfs.xFullPathname = FullPathname;
  g_vfs.xDlOpen = DlOpen;
  g_vfs.xDlError = DlError;
  g_vfs.xDlSym = DlSym;
  g_vfs.xDlClose = DlClose;
  g_vfs.xRandomness = Randomness;
  g_vfs.xSleep = Sleep;
  g_vfs.xCurrentTime = CurrentTime;
  g_vfs.xGetLastError = GetLastError;
  g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  sqlite3_vfs_register(&g_vfs, /*makeDflt=*/1);
}

void FaultVfs::Fail(const std::string& path_part, Fault fault) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_part = path_part;
  g_fault = fault;
  g_armed = true;
}

void FaultVfs::Clear() { g_armed = false; }

int FaultVfs::Refused() { return g_refused.load(); }

}  // namespace custody::store::testing
