#include "mcp/sse_sink.h"

namespace custody::mcp {

void SseSink::Attach(std::shared_ptr<http::SseWriter> writer) {
  MutexLock lock(mu_);
  writer_ = std::move(writer);
  if (on_gone_) writer_->OnPeerGone(std::move(on_gone_));
  for (auto& e : queued_) writer_->Send("message", e);
  queued_.clear();
  if (finished_) writer_->Close();
}

void SseSink::OnPeerGone(std::function<void()> f) {
  MutexLock lock(mu_);
  on_gone_ = std::move(f);
}

bool SseSink::Send(const std::string& data, bool last) {
  MutexLock lock(mu_);
  if (finished_) return false;
  finished_ = last;
  if (!writer_) {
    queued_.push_back(data);
    return true;
  }
  bool sent = writer_->Send("message", data);
  if (last) writer_->Close();
  return sent;
}

void SseSink::Close() {
  MutexLock lock(mu_);
  finished_ = true;
  if (writer_) writer_->Close();
}

bool SseSink::open() {
  MutexLock lock(mu_);
  return !finished_ && (!writer_ || !writer_->closed());
}

}  // namespace custody::mcp
