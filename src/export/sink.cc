#include "export/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/json_parse.h"
#include "common/mutex.h"
#include "export/reader.h"
#include "http/client.h"

namespace custody::ocsf {
namespace {

namespace fs = std::filesystem;

struct Endpoint {
  bool https = false;
  std::string host;
  uint16_t port = 0;
  std::string target;
};

Result<Endpoint> ParseUrl(const std::string& url) {
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7F) {
      return InvalidArgumentError("export.ocsf.url must not contain spaces or control characters");
    }
  }
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return InvalidArgumentError("export.ocsf.url is not a valid URL");
  const auto& u = *parsed;
  Endpoint e;
  e.https = u.scheme() == "https";
  if (!e.https && u.scheme() != "http") {
    return InvalidArgumentError("export.ocsf.url must be an http or https URL");
  }
  if (u.has_userinfo()) {
    return InvalidArgumentError(
        "export.ocsf.url must not contain user info (use export.ocsf.authorization_file)");
  }
  e.host = std::string(u.encoded_host_address());
  if (e.host.empty()) return InvalidArgumentError("export.ocsf.url must name a host");
  if (!u.encoded_path().empty() && !u.encoded_path().starts_with('/')) {
    return InvalidArgumentError("export.ocsf.url has an invalid host");
  }
  e.port = e.https ? 443 : 80;
  if (u.has_port()) {
    if (u.port().empty() || u.port_number() == 0) {
      return InvalidArgumentError("export.ocsf.url has an invalid port");
    }
    e.port = u.port_number();
  }
  e.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) e.target += "?" + std::string(u.encoded_query());
  return e;
}

Status WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return UnavailableError("cannot write the OCSF export file");
    }
    off += size_t(n);
  }
  return OkStatus();
}

// The ledger index of the last complete record of an export file, if it has one.
std::optional<uint64_t> LastIndexIn(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  std::streamoff size = in.tellg();
  if (size <= 0) return std::nullopt;
  std::streamoff start = std::max<std::streamoff>(0, size - (4 << 20));
  in.seekg(start);
  std::string tail(size_t(size - start), '\0');
  in.read(tail.data(), std::streamsize(tail.size()));
  // Only lines that end with '\n' were completely written.
  size_t end = tail.rfind('\n');
  while (end != std::string::npos && end > 0) {
    size_t begin = tail.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    boost::system::error_code ec;
    auto v = ParseJson(std::string_view(tail).substr(begin, end - begin), ec);
    if (!ec && v.is_object()) {
      const auto* idx = v.get_object().if_contains("unmapped");
      if (idx && idx->is_object()) idx = idx->get_object().if_contains("custody");
      if (idx && idx->is_object()) idx = idx->get_object().if_contains("ledger");
      if (idx && idx->is_object()) idx = idx->get_object().if_contains("index");
      if (idx && idx->is_uint64()) return idx->get_uint64();
      if (idx && idx->is_int64() && idx->get_int64() >= 0) return uint64_t(idx->get_int64());
    }
    if (begin == 0) break;
    end = begin - 1;
  }
  return std::nullopt;
}

}  // namespace

Status CheckSinkUrl(const std::string& url) { return ParseUrl(url).status(); }

struct OcsfSink::Impl {
  SinkOptions options;
  store::LedgerStore& store;
  std::function<uint64_t()> committed;
  std::function<void(const Status&)> on_error;
  std::optional<Endpoint> endpoint;
  std::unique_ptr<http::BlockingHttpClient> client;

  Mutex mu;
  CondVar cv;
  bool stopping GUARDED_BY(mu) = false;
  SinkStats stats GUARDED_BY(mu);
  std::thread thread;

  Impl(SinkOptions o, store::LedgerStore& s, std::function<uint64_t()> c,
       std::function<void(const Status&)> e)
      : options(std::move(o)), store(s), committed(std::move(c)), on_error(std::move(e)) {}

  // Waits up to `d`; false when stopping.
  bool Wait(std::chrono::milliseconds d) EXCLUDES(mu) {
    MutexLock lock(mu);
    cv.WaitFor(mu, d, [this]() REQUIRES(mu) { return stopping; });
    return !stopping;
  }
  bool Stopping() EXCLUDES(mu) {
    MutexLock lock(mu);
    return stopping;
  }

  Result<uint64_t> ReadCursor() {
    std::ifstream in(options.cursor_file);
    if (!in) {
      if (fs::exists(options.cursor_file)) {
        return UnavailableError("cannot read the OCSF export cursor");
      }
      return uint64_t{0};
    }
    std::string text;
    std::getline(in, text);
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
        text.size() > 19) {
      return DataLossError("the OCSF export cursor is not a ledger index");
    }
    return uint64_t(std::stoull(text));
  }

  // Replaces the cursor atomically and durably: a temporary file, fsync, rename, fsync of the
  // directory.
  Status WriteCursor(uint64_t next) {
    std::string tmp = options.cursor_file + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return UnavailableError("cannot write the OCSF export cursor");
    Status st = WriteAll(fd, std::to_string(next) + "\n");
    if (st.ok() && ::fsync(fd) != 0) st = UnavailableError("cannot sync the OCSF export cursor");
    ::close(fd);
    if (!st.ok()) return st;
    if (::rename(tmp.c_str(), options.cursor_file.c_str()) != 0) {
      return UnavailableError("cannot replace the OCSF export cursor");
    }
    fs::path dir = fs::path(options.cursor_file).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return OkStatus();
  }

  Status Post(const std::string& body, uint64_t from, uint64_t to) {
    if (!client) {
      http::ClientOptions co;
      co.tls = endpoint->https;
      co.ca_file = options.ca_file;
      co.timeout = options.timeout;
      co.max_response_bytes = 64 * 1024;
      client = std::make_unique<http::BlockingHttpClient>(endpoint->host, endpoint->port, co);
    }
    http::ClientRequest req;
    req.method = "POST";
    req.target = endpoint->target;
    req.headers.Add("Content-Type", "application/x-ndjson");
    req.headers.Add("X-Custody-Ledger-From", std::to_string(from));
    req.headers.Add("X-Custody-Ledger-To", std::to_string(to));
    if (!options.authorization.empty()) {
      req.headers.Add("Authorization", options.authorization);
    }
    req.body = body;
    Result<http::ClientResponse> resp = client->Send(std::move(req));
    if (!resp.ok()) {
      client.reset();  // a new connection next time
      return UnavailableError("OCSF export: the receiver is unreachable: " +
                              resp.status().message());
    }
    if (resp->status < 200 || resp->status > 299) {
      return UnavailableError("OCSF export: the receiver answered HTTP " +
                              std::to_string(resp->status));
    }
    return OkStatus();
  }

  // name -> name.1 -> … -> name.N (the oldest dropped).
  Status Rotate() {
    const std::string& f = options.file;
    std::error_code ec;
    int keep = std::max(options.keep_files, 0);
    if (keep == 0) {
      fs::remove(f, ec);
      return OkStatus();
    }
    fs::remove(f + "." + std::to_string(keep), ec);
    for (int i = keep - 1; i >= 1; --i) {
      std::string from = f + "." + std::to_string(i);
      if (fs::exists(from, ec)) fs::rename(from, f + "." + std::to_string(i + 1), ec);
    }
    fs::rename(f, f + ".1", ec);
    if (ec) return UnavailableError("cannot rotate the OCSF export file");
    return OkStatus();
  }

  Status Append(const std::string& body) {
    std::error_code ec;
    uint64_t size = fs::exists(options.file, ec) ? fs::file_size(options.file, ec) : 0;
    if (size > 0 && size + body.size() > options.max_file_bytes) RETURN_IF_ERROR(Rotate());
    int fd = ::open(options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return UnavailableError("cannot open the OCSF export file");
    Status st = WriteAll(fd, body);
    if (st.ok() && ::fsync(fd) != 0) st = UnavailableError("cannot sync the OCSF export file");
    ::close(fd);
    return st;
  }

  void Report(const Status& st) {
    {
      MutexLock lock(mu);
      ++stats.failures;
      stats.last_error = st.message();
    }
    if (on_error) on_error(st);
  }

  void Run() {
    Result<uint64_t> start = ReadCursor();
    while (!start.ok()) {
      Report(start.status());
      if (!Wait(options.max_backoff)) return;
      start = ReadCursor();
    }
    uint64_t cursor = *start;
    if (!options.file.empty()) {
      // What the file already holds was delivered, even if the cursor's write did not follow.
      if (auto last = LastIndexIn(options.file); last && *last + 1 > cursor) cursor = *last + 1;
    }
    {
      MutexLock lock(mu);
      stats.cursor = cursor;
    }
    auto backoff = options.min_backoff;
    while (!Stopping()) {
      uint64_t size = committed();
      if (cursor >= size) {
        if (!Wait(options.poll)) return;
        continue;
      }
      uint64_t to = std::min<uint64_t>(size, cursor + std::max<size_t>(options.batch, 1));
      std::string body;
      uint64_t last = cursor;
      Status st = ForEachRecord(store, cursor, to, options.ocsf,
                                [&](uint64_t index, const std::string& record) {
                                  body += record;
                                  body += '\n';
                                  last = index + 1;
                                  return true;
                                });
      if (st.ok() && last != to) st = UnavailableError("the ledger's entries are not readable yet");
      if (st.ok()) st = endpoint ? Post(body, cursor, to) : Append(body);
      if (st.ok()) st = WriteCursor(to);
      if (!st.ok()) {
        Report(st);
        if (!Wait(backoff)) return;
        backoff = std::min(backoff * 2, options.max_backoff);
        continue;
      }
      backoff = options.min_backoff;
      {
        MutexLock lock(mu);
        stats.records += to - cursor;
        ++stats.batches;
        stats.cursor = to;
      }
      cursor = to;
    }
  }
};

OcsfSink::OcsfSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OcsfSink::~OcsfSink() { Stop(); }

Result<std::unique_ptr<OcsfSink>> OcsfSink::Create(SinkOptions options, store::LedgerStore& store,
                                                   std::function<uint64_t()> committed,
                                                   std::function<void(const Status&)> on_error) {
  if (options.url.empty() == options.file.empty()) {
    return InvalidArgumentError("export.ocsf needs one of url and file");
  }
  if (options.cursor_file.empty()) return InvalidArgumentError("export.ocsf needs a cursor file");
  std::optional<Endpoint> endpoint;
  if (!options.url.empty()) {
    ASSIGN_OR_RETURN(Endpoint e, ParseUrl(options.url));
    endpoint = std::move(e);
  }
  auto impl =
      std::make_unique<Impl>(std::move(options), store, std::move(committed), std::move(on_error));
  impl->endpoint = std::move(endpoint);
  return std::unique_ptr<OcsfSink>(new OcsfSink(std::move(impl)));
}

void OcsfSink::Start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([this] { impl_->Run(); });
}

void OcsfSink::Stop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.NotifyAll();
  if (impl_->thread.joinable()) impl_->thread.join();
}

SinkStats OcsfSink::Stats() {
  MutexLock lock(impl_->mu);
  return impl_->stats;
}

}  // namespace custody::ocsf
