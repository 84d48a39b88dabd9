// The holds' thread: one io_context, a timer per hold (approval_holds.h).
#include "mcp/approval_holds.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <map>
#include <thread>
#include <vector>

namespace custody::mcp {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

struct ApprovalHolds::Impl {
  struct Entry {
    explicit Entry(asio::io_context& ioc) : timer(ioc) {}
    std::string approval_id;
    SteadyClock::time_point deadline;
    Poll poll;
    asio::steady_timer timer;
    bool done = false;
  };

  asio::io_context ioc;
  std::atomic<bool> stopped{false};
  std::atomic<size_t> count{0};
  // The rest only on the thread.
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  bool closing = false;  // Stop's handler ran: what is added later is stopped at once
  std::multimap<std::string, std::shared_ptr<Entry>> entries;
  std::thread thread;

  void Run(const std::shared_ptr<Entry>& e, Why why) {
    if (e->done) return;
    const bool go_on = e->poll(why) && why != Why::kStopping;
    if (!go_on) {
      Forget(e);
      return;
    }
    const auto now = SteadyClock::now();
    // Polled at its deadline, not up to a period late; a poll that goes on past its deadline
    // (it should not) is polled once a period, never in a busy loop.
    const auto next =
        e->deadline > now ? std::min(now + kPollPeriod, e->deadline) : now + kPollPeriod;
    e->timer.expires_at(next);
    e->timer.async_wait([this, e](boost::system::error_code ec) {
      if (!ec) Run(e, Why::kTimer);
    });
  }

  void Forget(const std::shared_ptr<Entry>& e) {
    e->done = true;
    e->timer.cancel();
    auto [b, end] = entries.equal_range(e->approval_id);
    for (auto it = b; it != end; ++it) {
      if (it->second == e) {
        entries.erase(it);
        count--;
        break;
      }
    }
  }
};

ApprovalHolds::ApprovalHolds() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

ApprovalHolds::~ApprovalHolds() { Stop(); }

void ApprovalHolds::Add(const std::string& approval_id, SteadyClock::time_point deadline,
                        Poll poll) {
  if (impl_->stopped.load()) {
    poll(Why::kStopping);
    return;
  }
  auto e = std::make_shared<Impl::Entry>(impl_->ioc);
  e->approval_id = approval_id;
  e->deadline = deadline;
  e->poll = std::move(poll);
  impl_->count++;
  asio::post(impl_->ioc, [impl = impl_.get(), e] {
    if (impl->closing) {  // added while Stop ran
      impl->count--;
      e->done = true;
      e->poll(Why::kStopping);
      return;
    }
    impl->entries.emplace(e->approval_id, e);
    impl->Run(e, Why::kTimer);
  });
}

void ApprovalHolds::Wake(const std::string& approval_id) {
  if (impl_->stopped.load()) return;
  asio::post(impl_->ioc, [impl = impl_.get(), approval_id] {
    std::vector<std::shared_ptr<Impl::Entry>> woken;
    auto [b, end] = impl->entries.equal_range(approval_id);
    for (auto it = b; it != end; ++it) woken.push_back(it->second);
    for (auto& e : woken) {
      e->timer.cancel();  // its wait ends with operation_aborted; Run arms it again
      impl->Run(e, Why::kWoken);
    }
  });
}

void ApprovalHolds::Stop() {
  if (!impl_->stopped.exchange(true)) {
    asio::post(impl_->ioc, [impl = impl_.get()] {
      impl->closing = true;
      auto all = std::move(impl->entries);
      impl->entries.clear();
      for (auto& [_, e] : all) {
        if (e->done) continue;
        e->done = true;
        e->timer.cancel();
        impl->count--;
        e->poll(Why::kStopping);
      }
      impl->work.reset();  // run() returns once the cancelled waits have run
    });
  }
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

size_t ApprovalHolds::size() const { return impl_->count.load(); }

}  // namespace custody::mcp
