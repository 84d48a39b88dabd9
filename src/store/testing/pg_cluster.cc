#include "store/testing/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

extern char** environ;

namespace custody::store::testing {
namespace {

namespace fs = std::filesystem;

// The newest installed server's bin directory.
std::string FindBin() {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = e.path() / "bin";
    if (fs::exists(bin / "initdb") && fs::exists(bin / "postgres") &&
        (best.empty() || std::stoi(e.path().filename().string()) >
                             std::stoi(fs::path(best).parent_path().filename().string()))) {
      best = bin.string();
    }
  }
  return best;
}

int FreePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(s);
  return port;
}

// argv run as `nobody` when we are root; returns the child's pid (or -1). A detached child gets
// a session of its own, so it outlives us.
int Spawn(std::vector<std::string> argv, const std::string& log, bool detached = false) {
  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam("nobody");
    std::vector<std::string> wrap = {
        "/usr/bin/setpriv", "--reuid=" + std::to_string(pw != nullptr ? pw->pw_uid : 65534),
        "--regid=" + std::to_string(pw != nullptr ? pw->pw_gid : 65534), "--clear-groups", "--"};
    argv.insert(argv.begin(), wrap.begin(), wrap.end());
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (detached) posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc == 0 ? pid : -1;
}

int WaitExit(int pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Tail(const std::string& file) {
  std::string out;
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out.size() > 2000 ? out.substr(out.size() - 2000) : out;
}

PgCluster* g_cluster = nullptr;

}  // namespace

Result<PgCluster*> PgCluster::Shared() {
  static std::once_flag once;
  static Status started;
  std::call_once(once, [] {
    auto* c = new PgCluster();
    if (const char* dir = std::getenv("CUSTODY_TEST_PG_DIR"); dir != nullptr && *dir != 0) {
      // The CTest fixture's cluster: only its port is needed; it is not ours to stop.
      FILE* f = std::fopen((std::string(dir) + "/port").c_str(), "r");
      if (f == nullptr || std::fscanf(f, "%d", &c->port_) != 1) {
        started = FailedPreconditionError(std::string("no cluster in CUSTODY_TEST_PG_DIR=") + dir +
                                          " (did PgCluster.Start run?)");
      }
      if (f != nullptr) std::fclose(f);
      if (started.ok()) g_cluster = c;
      return;
    }
    char tmpl[] = "/tmp/custody-pg-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      started = InternalError("mkdtemp failed");
      return;
    }
    started = c->Start(tmpl, false);
    if (!started.ok()) {
      c->Stop();
      delete c;
      return;
    }
    g_cluster = c;
    std::atexit([] { g_cluster->Stop(); });
  });
  if (!started.ok()) return started;
  return g_cluster;
}

Status PgCluster::StartDetached(const std::string& dir) {
  std::error_code ec;
  if (!fs::create_directory(dir, ec)) return InternalError("cannot create " + dir);
  PgCluster c;
  Status st = c.Start(dir, true);
  if (!st.ok()) {
    c.Stop();
    return st;
  }
  FILE* f = std::fopen((dir + "/port").c_str(), "w");
  if (f == nullptr) return InternalError("cannot write " + dir + "/port");
  std::fprintf(f, "%d\n", c.port_);
  std::fclose(f);
  c.dir_.clear();  // it outlives this process: not removed with `c`
  return OkStatus();
}

Status PgCluster::StopDetached(const std::string& dir) {
  // postmaster.pid's first line is the server's pid.
  int pid = 0;
  if (FILE* f = std::fopen((dir + "/data/postmaster.pid").c_str(), "r")) {
    if (std::fscanf(f, "%d", &pid) != 1) pid = 0;
    std::fclose(f);
  }
  const std::string pid_file = dir + "/data/postmaster.pid";
  if (pid > 0 && ::kill(pid, SIGINT) == 0) {
    // The server removes postmaster.pid as its last step (its pid may linger as a zombie when
    // nothing reaps the orphan, so kill(pid, 0) alone would wait for nothing).
    for (int i = 0; i < 300 && fs::exists(pid_file) && ::kill(pid, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return OkStatus();
}

Status PgCluster::Start(const std::string& dir, bool detached) {
  dir_ = dir;
  bin_ = FindBin();
  if (bin_.empty()) {
    return FailedPreconditionError(
        "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql; "
        "scripts/install-deps.sh does)");
  }
  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam("nobody");
    if (::chown(dir_.c_str(), pw != nullptr ? pw->pw_uid : 65534,
                pw != nullptr ? pw->pw_gid : 65534) != 0) {
      return InternalError("cannot hand " + dir_ + " to nobody");
    }
  }
  std::string log = dir_ + "/server.log";
  std::string data = dir_ + "/data";
  int pid = Spawn({bin_ + "/initdb", "-D", data, "-U", "custody", "-A", "trust", "-E", "UTF8",
                   "--no-sync", "--no-instructions"},
                  log);
  if (pid < 0 || WaitExit(pid) != 0) return InternalError("initdb failed: " + Tail(log));
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    Result<bool> up = Serve(detached);
    if (!up.ok()) return up.status();
    if (*up) return OkStatus();
  }
  return InternalError("postgres did not start: " + Tail(log));
}

Result<bool> PgCluster::Serve(bool detached) {
  std::string log = dir_ + "/server.log";
  pid_ = Spawn(
      {bin_ + "/postgres", "-D", dir_ + "/data", "-p", std::to_string(port_), "-k", dir_, "-c",
       "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=32MB"},
      log, detached);
  if (pid_ < 0) return InternalError("cannot start postgres");
  std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(port_) + " user=custody dbname=postgres";
  for (int i = 0; i < 300; ++i) {  // 30 s
    if (PQping(conninfo.c_str()) == PQPING_OK) {
      if (detached) pid_ = 0;  // StopDetached stops it
      return true;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      return false;  // exited (the port was taken meanwhile?)
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return InternalError("postgres did not become ready: " + Tail(log));
}

Result<std::unique_ptr<PgCluster>> PgCluster::StartPrivate() {
  char tmpl[] = "/tmp/custody-pg-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return InternalError("mkdtemp failed");
  std::unique_ptr<PgCluster> c(new PgCluster());
  Status st = c->Start(tmpl, false);
  if (!st.ok()) {
    c->Stop();
    return st;
  }
  return c;
}

PgCluster::~PgCluster() { Stop(); }

Status PgCluster::StopServer() {
  if (pid_ <= 0) return FailedPreconditionError("the server is not running");
  ::kill(pid_, SIGINT);  // fast shutdown: open connections are cut
  WaitExit(pid_);
  pid_ = 0;
  return OkStatus();
}

Status PgCluster::StartServer() {
  if (pid_ > 0) return FailedPreconditionError("the server is running");
  ASSIGN_OR_RETURN(bool up, Serve(false));
  if (!up) return InternalError("postgres did not start again on port " + std::to_string(port_));
  return OkStatus();
}

void PgCluster::Stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGINT);  // fast shutdown
    WaitExit(pid_);
    pid_ = 0;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

Result<std::string> PgCluster::NewDatabase() {
  std::string name =
      "custody_test_" + std::to_string(::getpid()) + "_" + std::to_string(next_db_++);
  std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(port_) + " user=custody dbname=postgres";
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return UnavailableError("cannot reach the test cluster: " + m);
  }
  std::string sql = "CREATE DATABASE " + name;
  PGresult* r = PQexec(c, sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string m = ok ? "" : PQerrorMessage(c);
  PQclear(r);
  PQfinish(c);
  if (!ok) return UnavailableError("CREATE DATABASE failed: " + m);
  return "postgresql://custody@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

std::unique_ptr<PgTestConnection> PgTestConnection::Connect(const std::string& host, int port,
                                                            const std::string& dbname,
                                                            const std::string& user,
                                                            const std::string& password) {
  const std::string port_text = std::to_string(port);
  const char* keys[] = {"host", "port", "dbname", "user", "password", "connect_timeout", nullptr};
  const char* vals[] = {host.c_str(), port_text.c_str(), dbname.c_str(),
                        user.c_str(), password.c_str(),  "5",
                        nullptr};
  std::unique_ptr<PgTestConnection> c(new PgTestConnection);
  c->conn_ = PQconnectdbParams(keys, vals, 0);
  return c;
}

PgTestConnection::~PgTestConnection() {
  if (conn_) PQfinish(conn_);
}

bool PgTestConnection::ok() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

bool PgTestConnection::Run(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  PQclear(r);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int64_t PgTestConnection::MillisUntilCut(std::chrono::steady_clock::time_point since,
                                         std::chrono::milliseconds limit) {
  using std::chrono::steady_clock;
  while (steady_clock::now() - since < limit) {
    if (!Run("SELECT 1")) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - since)
          .count();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

std::string PgTestConnection::Error() const {
  return conn_ ? PQerrorMessage(conn_) : "no connection";
}

}  // namespace custody::store::testing
