// The [export.ocsf] sink with a file: every committed entry lands once, in order, across a stop
// and a restart (the durable cursor), and rotation keeps N files. The HTTP sink, and a SIGKILL
// mid-stream, are tested end to end in tests/ocsf/sink_e2e.mjs.
#include "export/sink.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crypto/ed25519.h"
#include "ledger/ledger.h"
#include "store/stores.h"

namespace custody::ocsf {
namespace {

namespace fs = std::filesystem;

struct World {
  fs::path dir;
  std::unique_ptr<ledger::Ledger> ledger;

  World() {
    dir = fs::temp_directory_path() /
          ("custody_sink_" + std::to_string(::getpid()) + "_" + std::to_string(std::rand()));
    fs::create_directories(dir);
    auto store = store::OpenLedgerStore(store::StorageOptions::InMemory(), {});
    EXPECT_TRUE(store.ok());
    auto key = crypto::Ed25519PrivateKey::Generate();
    ledger::LedgerOptions lo;
    lo.origin = "custody.test/ledger";
    ledger = std::move(*ledger::Ledger::Open(std::move(*store), std::move(*key), lo));
  }
  ~World() {
    ledger.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = ledger->Append(R"({"kind":"custom.note","time":"2026-12-05T10:00:00.000Z","n":)" +
                              std::to_string(i) + "}");
      ASSERT_TRUE(r.ok());
    }
  }
  std::unique_ptr<OcsfSink> Sink(uint64_t max_bytes = 64 << 20, int keep = 5) {
    SinkOptions o;
    o.file = (dir / "ocsf.ndjson").string();
    o.cursor_file = (dir / "ocsf.cursor").string();
    o.max_file_bytes = max_bytes;
    o.keep_files = keep;
    o.batch = 7;
    o.poll = std::chrono::milliseconds(5);
    o.ocsf.origin = "custody.test/ledger";
    auto s = OcsfSink::Create(o, ledger->store(), [this] { return ledger->Size(); }, {});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  void WaitFor(OcsfSink& s, uint64_t cursor) {
    for (int i = 0; i < 2000 && s.Stats().cursor < cursor; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(s.Stats().cursor, cursor) << s.Stats().last_error;
  }
  // The ledger indexes of the records in the export files, oldest file first.
  std::vector<uint64_t> Indexes() {
    std::vector<uint64_t> out;
    std::vector<fs::path> files;
    for (int i = 9; i >= 1; --i) {
      fs::path p = dir / ("ocsf.ndjson." + std::to_string(i));
      if (fs::exists(p)) files.push_back(p);
    }
    files.push_back(dir / "ocsf.ndjson");
    for (const auto& f : files) {
      std::ifstream in(f);
      std::string line;
      while (std::getline(in, line)) {
        auto v = boost::json::parse(line);
        out.push_back(
            v.at("unmapped").at("custody").at("ledger").at("index").to_number<uint64_t>());
      }
    }
    return out;
  }
};

std::vector<uint64_t> Iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

TEST(OcsfSinkTest, EveryEntryOnceInOrderAcrossARestart) {
  World w;
  w.Append(20);
  auto sink = w.Sink();
  sink->Start();
  w.WaitFor(*sink, 20);
  w.Append(5);  // committed while it runs
  w.WaitFor(*sink, 25);
  sink->Stop();
  w.Append(10);  // committed while it is stopped
  auto again = w.Sink();
  again->Start();
  w.WaitFor(*again, 35);
  again->Stop();
  EXPECT_EQ(w.Indexes(), Iota(35));
  std::ifstream cursor(w.dir / "ocsf.cursor");
  std::string text;
  std::getline(cursor, text);
  EXPECT_EQ(text, "35");
}

TEST(OcsfSinkTest, AFileAheadOfItsCursorIsNotRepeated) {
  World w;
  w.Append(10);
  {
    auto sink = w.Sink();
    sink->Start();
    w.WaitFor(*sink, 10);
  }
  // As if the process died after writing records but before the cursor followed.
  {
    std::ofstream c(w.dir / "ocsf.cursor", std::ios::trunc);
    c << "3\n";
  }
  w.Append(2);
  auto again = w.Sink();
  again->Start();
  w.WaitFor(*again, 12);
  again->Stop();
  EXPECT_EQ(w.Indexes(), Iota(12));
}

TEST(OcsfSinkTest, RotatesBySizeAndKeepsN) {
  World w;
  w.Append(60);
  auto sink = w.Sink(/*max_bytes=*/12000, /*keep=*/2);
  sink->Start();
  w.WaitFor(*sink, 60);
  sink->Stop();
  EXPECT_TRUE(fs::exists(w.dir / "ocsf.ndjson.1"));
  EXPECT_TRUE(fs::exists(w.dir / "ocsf.ndjson.2"));
  EXPECT_FALSE(fs::exists(w.dir / "ocsf.ndjson.3"));
  EXPECT_LE(fs::file_size(w.dir / "ocsf.ndjson.1"), 12000u);
  // What is kept is the newest records, in order, each once, ending at the last.
  std::vector<uint64_t> kept = w.Indexes();
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.back(), 59u);
  for (size_t i = 1; i < kept.size(); ++i) EXPECT_EQ(kept[i], kept[i - 1] + 1);
}

TEST(OcsfSinkTest, RefusesABadConfiguration) {
  World w;
  auto size = [] { return uint64_t{0}; };
  SinkOptions none;
  none.cursor_file = (w.dir / "c").string();
  EXPECT_FALSE(OcsfSink::Create(none, w.ledger->store(), size, {}).ok());
  SinkOptions both = none;
  both.url = "http://127.0.0.1:1/x";
  both.file = "f";
  EXPECT_FALSE(OcsfSink::Create(both, w.ledger->store(), size, {}).ok());
  EXPECT_FALSE(CheckSinkUrl("ftp://x/").ok());
  EXPECT_FALSE(CheckSinkUrl("https://user:pw@siem.example.com/").ok());
  EXPECT_TRUE(CheckSinkUrl("https://siem.example.com:8088/services/collector").ok());
}

}  // namespace
}  // namespace custody::ocsf
