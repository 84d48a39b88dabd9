// An SSE response opened before its writer exists: events queue until the HTTP server attaches
// the writer. The gateway's GET streams and streamed tools/call answers are SseSinks.
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "http/http.h"

namespace custody::mcp {

class SseSink {
 public:
  // Sends what was queued, and closes the writer if the stream already finished.
  void Attach(std::shared_ptr<http::SseWriter> writer);
  // Sends one "message" event; `last` finishes the stream after it. Returns false once the
  // stream is finished or its peer went away.
  bool Send(const std::string& data, bool last = false);
  void Close();
  // `f` runs once if the peer closes the stream before it finishes (http::SseWriter::OnPeerGone).
  // Set before the writer is attached.
  void OnPeerGone(std::function<void()> f);
  // Not finished, and its peer (once attached) still there.
  bool open();

 private:
  Mutex mu_;
  std::shared_ptr<http::SseWriter> writer_ GUARDED_BY(mu_);
  std::vector<std::string> queued_ GUARDED_BY(mu_);
  bool finished_ GUARDED_BY(mu_) = false;
  std::function<void()> on_gone_ GUARDED_BY(mu_);
};

}  // namespace custody::mcp
