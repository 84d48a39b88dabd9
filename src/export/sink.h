// The [export.ocsf] sink of `custody serve`: streams every committed ledger entry, as an OCSF
// record (ocsf.h), to an HTTP(S) endpoint (NDJSON batches by POST, retried with backoff) or to a
// size-rotated file. It runs on its own thread and only reads what the ledger already committed
// (polling its size), so it never slows or blocks an append.
//
// A durable cursor (a small file holding the next ledger index to send, replaced atomically
// after each acknowledged batch) makes a restart resume where the last acknowledged batch ended:
// nothing is lost. Between an acknowledgement and the cursor's write a crash can resend that one
// batch; every record carries its ledger index (metadata.sequence, the custody.ledger.index tag,
// and the X-Custody-Ledger-From/-To headers of each POST), so a receiver drops the repeat. The
// file sink removes even that window: it resumes after the last record the file holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "export/ocsf.h"
#include "store/ledger_store.h"

namespace custody::ocsf {

struct SinkOptions {
  std::string url;            // http(s)://host[:port]/path: POST of application/x-ndjson batches
  std::string file;           // or: append to this file, rotated by size
  std::string cursor_file;    // required: the durable cursor
  std::string ca_file;        // https: trust anchors (default: the system store)
  std::string authorization;  // the Authorization header's value, if the receiver wants one
  uint64_t max_file_bytes = 64ull << 20;  // file: rotate once the file would pass this
  int keep_files = 5;                     // file: rotated files kept (name.1 … name.N)
  size_t batch = 500;                     // records per POST or write
  std::chrono::milliseconds poll{500};    // how often the ledger's size is read when idle
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds min_backoff{250}, max_backoff{30000};
  Options ocsf;
};

// What the sink reports (for logs and tests).
struct SinkStats {
  uint64_t cursor = 0;  // next index to send
  uint64_t records = 0, batches = 0, failures = 0;
  std::string last_error;
};

class OcsfSink {
 public:
  // `committed` returns how many entries are durable (Ledger::Size); `store` is read from the
  // sink's thread (LedgerStore reads are thread-safe). `on_error` (may be empty) hears each
  // failed delivery or read, without secrets.
  static Result<std::unique_ptr<OcsfSink>> Create(SinkOptions options, store::LedgerStore& store,
                                                  std::function<uint64_t()> committed,
                                                  std::function<void(const Status&)> on_error);
  ~OcsfSink();  // Stop()
  OcsfSink(const OcsfSink&) = delete;
  OcsfSink& operator=(const OcsfSink&) = delete;

  void Start();
  // Ends the thread after the batch in flight (a failing delivery stops retrying).
  void Stop();
  SinkStats Stats();

 private:
  struct Impl;
  explicit OcsfSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Validates the [export.ocsf] url: http or https, a host, no user info. For config checks.
Status CheckSinkUrl(const std::string& url);

}  // namespace custody::ocsf
