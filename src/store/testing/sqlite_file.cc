#include "store/testing/sqlite_file.h"

#include <sqlite3.h>

#include <memory>

namespace custody::store::testing {
namespace {

using Db = std::unique_ptr<sqlite3, int (*)(sqlite3*)>;

Result<Db> OpenFile(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db(raw, sqlite3_close_v2);
  if (rc != SQLITE_OK) {
    return UnavailableError("cannot open " + path + ": " +
                            (raw ? sqlite3_errmsg(raw) : "out of memory"));
  }
  return db;
}

}  // namespace

Status ExecOnFile(const std::string& path, const std::string& sql,
                  const std::vector<std::string>& blobs) {
  ASSIGN_OR_RETURN(Db db, OpenFile(path, SQLITE_OPEN_READWRITE));
  if (blobs.empty()) {
    char* err = nullptr;
    if (sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return UnavailableError(sql + ": " + msg);
    }
    return OkStatus();
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    return UnavailableError(sql + ": " + sqlite3_errmsg(db.get()));
  }
  for (size_t i = 0; i < blobs.size(); ++i) {
    sqlite3_bind_blob(s, static_cast<int>(i + 1), blobs[i].data(),
                      static_cast<int>(blobs[i].size()), SQLITE_STATIC);
  }
  int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) return UnavailableError(sql + ": " + sqlite3_errmsg(db.get()));
  return OkStatus();
}

Result<int64_t> QueryIntOnFile(const std::string& path, const std::string& sql) {
  ASSIGN_OR_RETURN(Db db, OpenFile(path, SQLITE_OPEN_READONLY));
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    return UnavailableError(sql + ": " + sqlite3_errmsg(db.get()));
  }
  int rc = sqlite3_step(s);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  if (rc == SQLITE_DONE) return NotFoundError(sql + ": no row");
  if (rc != SQLITE_ROW) return UnavailableError(sql + ": " + sqlite3_errmsg(db.get()));
  return v;
}

}  // namespace custody::store::testing
