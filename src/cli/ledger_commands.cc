// `custody ledger ...`: the ledger as a scriptable CLI. Output shapes are relied on by tests and
// later tooling: one JSON object per line for append, plain text for notes and keys.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/key_file.h"
#include "ledger/ledger.h"
#include "ledger/note.h"
#include "ledger/receipt.h"
#include "ledger/verifier.h"
#include "store/stores.h"
#ifdef CUSTODY_HAVE_ATTRIBUTION
#include "investigate/evidence.h"
#endif

namespace custody::cli {
namespace {

using ledger::Hash;

constexpr const char* kDefaultOrigin = "custody.local/ledger";

[[noreturn]] void Fail(const Status& s, int code = 1) {
  std::cerr << "custody: " << s.ToString() << "\n";
  throw CLI::RuntimeError(code);
}

template <typename T>
T OrFail(Result<T> r, int code = 1) {
  if (!r.ok()) Fail(r.status(), code);
  return std::move(r).value();
}

struct LedgerFlags {
  std::string db;
  std::string key;  // default: <db>.key
  std::string origin;
  size_t batch_size = 4096;
  int64_t batch_delay_us = 0;

  std::string KeyPath() const { return key.empty() ? db + ".key" : key; }
};

void AddDbFlags(CLI::App* cmd, LedgerFlags& f) {
  cmd->add_option("--db", f.db, "Ledger SQLite file")->required();
  cmd->add_option("--key", f.key, "Ed25519 PKCS#8 PEM signing key (default: <db>.key, mode 0600)");
}

// Opens (and for writers creates) the ledger with its signing key.
std::unique_ptr<ledger::Ledger> OpenLedger(const LedgerFlags& f, bool create) {
  if (!create && !std::filesystem::exists(f.db)) {
    Fail(NotFoundError("no ledger at " + f.db));
  }
  auto store =
      OrFail(store::OpenLedgerFile(f.db, {.read_only = false, .create_if_missing = create}));
  crypto::Ed25519PrivateKey key = OrFail(create ? crypto::LoadOrCreateEd25519Key(f.KeyPath())
                                                : [&]() -> Result<crypto::Ed25519PrivateKey> {
    if (!std::filesystem::exists(f.KeyPath())) {
      return NotFoundError("no signing key at " + f.KeyPath() + " (use --key)");
    }
    return crypto::LoadOrCreateEd25519Key(f.KeyPath());
  }());
  ledger::LedgerOptions lo;
  lo.origin = f.origin;
  auto stored_origin = OrFail(store->GetMeta("origin"));
  if (!stored_origin && lo.origin.empty()) lo.origin = kDefaultOrigin;
  lo.max_batch = f.batch_size;
  lo.max_delay = std::chrono::microseconds(f.batch_delay_us);
  return OrFail(ledger::Ledger::Open(std::move(store), std::move(key), lo));
}

std::string HashesJson(const std::vector<Hash>& hashes) {
  std::string out = "[";
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (i) out += ',';
    out += '"' + Base64Encode(hashes[i]) + '"';
  }
  return out + "]";
}

std::string AppendLine(const ledger::AppendResult& r) {
  std::string out = "{\"index\":" + std::to_string(r.index) + ",\"leaf_hash\":\"" +
                    HexEncode(r.leaf_hash) + "\",\"receipt\":";
  AppendJcsString(r.receipt, out);
  return out + "}";
}

std::string ErrorLine(uint64_t line, const Status& s) {
  std::string out = "{\"error\":{\"code\":\"" + std::string(StatusCodeName(s.code())) +
                    "\",\"line\":" + std::to_string(line) + ",\"message\":";
  AppendJcsString(s.message(), out);
  return out + "}}";
}

// Reads events from stdin and keeps reading while earlier lines wait for their batch; a writer
// thread prints results in input order. In-flight lines are bounded to cap memory.
int RunAppend(const LedgerFlags& f) {
  auto ledger = OpenLedger(f, /*create=*/true);
  constexpr size_t kMaxInFlight = 1 << 16;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::future<std::string>> pending;  // guarded by mu
  bool eof = false;                              // guarded by mu
  bool any_error = false;

  std::thread writer([&] {
    std::string buf;
    while (true) {
      std::future<std::string> next;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return eof || !pending.empty(); });
        if (pending.empty()) break;
        next = std::move(pending.front());
        pending.pop_front();
      }
      cv.notify_all();
      std::string line = next.get();
      if (line.rfind("{\"error\"", 0) == 0) any_error = true;
      buf += line;
      buf += '\n';
      bool more;
      {
        std::lock_guard<std::mutex> lock(mu);
        more = !pending.empty() &&
               pending.front().wait_for(std::chrono::seconds(0)) == std::future_status::ready;
      }
      if (!more || buf.size() > (1 << 20)) {
        std::fwrite(buf.data(), 1, buf.size(), stdout);
        std::fflush(stdout);
        buf.clear();
      }
    }
    std::fwrite(buf.data(), 1, buf.size(), stdout);
    std::fflush(stdout);
  });

  std::string text;
  uint64_t line_no = 0;
  while (std::getline(std::cin, text)) {
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are skipped
    auto promise = std::make_shared<std::promise<std::string>>();
    std::future<std::string> fut = promise->get_future();
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return pending.size() < kMaxInFlight; });
      pending.push_back(std::move(fut));
    }
    cv.notify_all();
    uint64_t n = line_no;
    Status st = ledger->AppendAsync(text, {}, [promise, n](Result<ledger::AppendResult> r) {
      promise->set_value(r.ok() ? AppendLine(*r) : ErrorLine(n, r.status()));
    });
    if (!st.ok()) promise->set_value(ErrorLine(n, st));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    eof = true;
  }
  cv.notify_all();
  writer.join();
  ledger->Close();
  return any_error ? 1 : 0;
}

Result<ledger::NoteVerifier> VerifierFor(const LedgerFlags& f, const std::string& vkey) {
  if (!vkey.empty()) {
    std::string text = vkey;
    if (std::filesystem::exists(vkey)) {
      ASSIGN_OR_RETURN(text, crypto::ReadFileToString(vkey));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    }
    return ledger::NoteVerifier::FromVerifierKey(text);
  }
  if (!std::filesystem::exists(f.KeyPath())) {
    return NotFoundError("no key to verify with: pass --vkey or --key");
  }
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey key, crypto::LoadOrCreateEd25519Key(f.KeyPath()));
  ASSIGN_OR_RETURN(auto store,
                   store::OpenLedgerFile(f.db, {.read_only = true, .create_if_missing = false}));
  ASSIGN_OR_RETURN(std::optional<std::string> origin, store->GetMeta("origin"));
  ASSIGN_OR_RETURN(ledger::NoteSigner signer,
                   ledger::NoteSigner::Create(origin.value_or(kDefaultOrigin), key));
  return ledger::NoteVerifier::FromVerifierKey(signer.VerifierKey());
}

int RunVerify(const LedgerFlags& f, const std::string& vkey) {
  if (!std::filesystem::exists(f.db)) Fail(NotFoundError("no ledger at " + f.db));
  auto verifier = OrFail(VerifierFor(f, vkey));
  auto store = store::OpenLedgerFile(f.db, {.read_only = true, .create_if_missing = false});
  if (!store.ok()) Fail(DataLossError("cannot open the ledger: " + store.status().message()));
  auto origin = (*store)->GetMeta("origin");
  if (!origin.ok()) Fail(DataLossError("cannot read the ledger: " + origin.status().message()));
  if (!*origin) Fail(DataLossError("the ledger has no origin recorded"));
  if (verifier.name() != **origin) {
    Fail(FailedPreconditionError("verifier key is for \"" + verifier.name() +
                                 "\" but the ledger's origin is \"" + **origin + "\""));
  }
  auto report = ledger::VerifyLedger(**store, verifier, **origin);
  if (!report.ok()) {
    std::cerr << "custody: ledger verification FAILED: " << report.status().message() << "\n";
    throw CLI::RuntimeError(1);
  }
  std::cout << "{\"ok\":true,\"leaves\":" << report->leaves
            << ",\"checkpoints\":" << report->checkpoints << ",\"root\":\""
            << HexEncode(report->root) << "\"}\n";
  return 0;
}

int RunVerifyReceipt(const std::string& vkey, const std::string& receipt_file,
                     const std::string& event_file) {
  std::string key_text = vkey;
  if (std::filesystem::exists(vkey)) {
    key_text = OrFail(crypto::ReadFileToString(vkey));
    while (!key_text.empty() && (key_text.back() == '\n' || key_text.back() == '\r')) {
      key_text.pop_back();
    }
  }
  auto verifier = OrFail(ledger::NoteVerifier::FromVerifierKey(key_text));
  std::string receipt = OrFail(crypto::ReadFileToString(receipt_file));
  std::string event = OrFail(crypto::ReadFileToString(event_file));
  auto canonical = CanonicalizeJson(event);
  if (!canonical.ok()) Fail(canonical.status().WithContext("event file"));
  Status st = ledger::VerifyReceipt(verifier, receipt, AsBytes(*canonical));
  if (!st.ok()) {
    std::cerr << "custody: receipt verification FAILED: " << st.message() << "\n";
    throw CLI::RuntimeError(1);
  }
  auto parsed = OrFail(ledger::ParseReceipt(receipt));
  std::cout << "{\"ok\":true,\"index\":" << parsed.index << ",\"leaf_hash\":\""
            << HexEncode(ledger::HashLeaf(*canonical)) << "\"}\n";
  return 0;
}

#ifdef CUSTODY_HAVE_ATTRIBUTION
// Offline check of a custody-evidence/v1 bundle; exit 1 naming every problem.
void RunVerifyBundle(const std::string& file, const std::string& vkey) {
  std::optional<std::string> pinned;
  if (!vkey.empty()) {
    std::string key_text = vkey;
    if (std::filesystem::exists(vkey)) {
      key_text = OrFail(crypto::ReadFileToString(vkey));
      while (!key_text.empty() && (key_text.back() == '\n' || key_text.back() == '\r')) {
        key_text.pop_back();
      }
    }
    pinned = key_text;
  }
  std::string bundle = OrFail(crypto::ReadFileToString(file));
  auto report = investigate::VerifyEvidence(bundle, pinned);
  if (!report.ok()) Fail(report.status().WithContext(file));
  std::cout << investigate::EvidenceReportJson(*report) << "\n";
  if (!report->ok) {
    for (const auto& p : report->problems) std::cerr << "custody: bundle FAILED: " << p << "\n";
    throw CLI::RuntimeError(1);
  }
  if (!pinned) {
    std::cerr << "custody: note: no --key given; the bundle was checked against the key it "
                 "carries, which proves only that it is self-consistent\n";
  }
}
#endif

int RunDemo(const LedgerFlags& f) {
  auto ledger = OpenLedger(f, /*create=*/true);
  std::cout << "ledger: " << f.db << "\nverifier key: " << ledger->VerifierKey() << "\n\n";
  const char* events[] = {
      R"({"kind":"session.start","actor":{"agent":"planner","session":"s-1"},"initiator":{"id":"alice@example.com","verified":"verified"}})",
      R"({"kind":"action.decision","actor":{"agent":"planner","session":"s-1"},"target":{"server":"github","tool":"create_issue"},"decision":{"effect":"allow"}})",
      R"({"kind":"action.outcome","actor":{"agent":"planner","session":"s-1"},"outcome":{"status":"ok","latency_ms":41}})",
  };
  ledger::AppendResult last;
  std::string last_event;
  for (const char* e : events) {
    last = OrFail(ledger->Append(e));
    last_event = OrFail(CanonicalizeJson(e));
    std::cout << "appended index " << last.index << " leaf " << HexEncode(last.leaf_hash) << "\n";
  }
  std::cout << "\nreceipt for index " << last.index << ":\n" << last.receipt << "\n";
  auto verifier = OrFail(ledger::NoteVerifier::FromVerifierKey(ledger->VerifierKey()));
  Status st = ledger::VerifyReceipt(verifier, last.receipt, AsBytes(last_event));
  std::cout << "offline receipt verification: " << (st.ok() ? "OK" : st.ToString()) << "\n";
  std::string tampered = last_event;
  tampered[tampered.size() / 2] ^= 1;
  Status bad = ledger::VerifyReceipt(verifier, last.receipt, AsBytes(tampered));
  std::cout << "tampered event rejected: " << (bad.ok() ? "NO (bug)" : bad.message()) << "\n";
  ledger->Close();
  auto store = OrFail(store::OpenLedgerFile(f.db, {}));
  auto report = ledger::VerifyLedger(*store, verifier, ledger->origin());
  std::cout << "whole-ledger verification: "
            << (report.ok() ? "OK (" + std::to_string(report->leaves) + " leaves, " +
                                  std::to_string(report->checkpoints) + " checkpoints)"
                            : report.status().ToString())
            << "\n";
  return st.ok() && !bad.ok() && report.ok() ? 0 : 1;
}

}  // namespace

void RegisterLedgerCommands(CLI::App& app) {
  auto* ledger_cmd = app.add_subcommand("ledger", "The tamper-evident ledger");
  ledger_cmd->require_subcommand(1);
  auto flags = std::make_shared<LedgerFlags>();

  auto* append = ledger_cmd->add_subcommand(
      "append", "Append one JSON event per stdin line; print index, leaf hash and receipt");
  AddDbFlags(append, *flags);
  append->add_option("--origin", flags->origin, "Log origin for a new ledger");
  append->add_option("--batch-size", flags->batch_size, "Max events per batch")
      ->check(CLI::Range(1, 1 << 20));
  append
      ->add_option("--batch-delay-us", flags->batch_delay_us,
                   "Max microseconds a batch waits to fill (0: commit as soon as possible)")
      ->check(CLI::Range(0, 10000000));
  append->callback([flags] {
    if (int rc = RunAppend(*flags); rc != 0) throw CLI::RuntimeError(rc);
  });

  auto* checkpoint = ledger_cmd->add_subcommand("checkpoint", "Print the latest signed checkpoint");
  AddDbFlags(checkpoint, *flags);
  checkpoint->callback([flags] {
    auto l = OpenLedger(*flags, false);
    std::cout << OrFail(l->LatestCheckpoint()).note;
  });

  auto index = std::make_shared<uint64_t>(0);
  auto size = std::make_shared<uint64_t>(0);
  auto* proof = ledger_cmd->add_subcommand("proof", "Print an inclusion proof as JSON");
  AddDbFlags(proof, *flags);
  proof->add_option("--index", *index, "Leaf index")->required();
  proof->add_option("--size", *size, "Tree size (default: the latest checkpoint)");
  proof->callback([flags, index, size] {
    auto l = OpenLedger(*flags, false);
    uint64_t latest = l->Size();
    uint64_t m = *size == 0 ? latest : *size;
    auto hashes = OrFail(l->InclusionProof(*index, m));
    auto entry = OrFail(l->GetEntry(*index));
    std::string out = "{\"index\":" + std::to_string(*index) + ",\"size\":" + std::to_string(m) +
                      ",\"leaf_hash\":\"" + HexEncode(entry.leaf_hash) +
                      "\",\"hashes\":" + HashesJson(hashes);
    if (m == latest) {
      out += ",\"receipt\":";
      AppendJcsString(OrFail(l->ReceiptFor(*index)), out);
    }
    std::cout << out << "}\n";
  });

  auto from = std::make_shared<uint64_t>(0);
  auto to = std::make_shared<uint64_t>(0);
  auto* consistency =
      ledger_cmd->add_subcommand("consistency", "Print a consistency proof as JSON");
  AddDbFlags(consistency, *flags);
  consistency->add_option("--from", *from, "Older tree size")->required();
  consistency->add_option("--to", *to, "Newer tree size")->required();
  consistency->callback([flags, from, to] {
    auto l = OpenLedger(*flags, false);
    auto hashes = OrFail(l->ConsistencyProof(*from, *to));
    std::cout << "{\"from\":" << *from << ",\"to\":" << *to << ",\"hashes\":" << HashesJson(hashes)
              << "}\n";
  });

  auto* key = ledger_cmd->add_subcommand("key", "Print the signed-note verifier key");
  AddDbFlags(key, *flags);
  key->add_option("--origin", flags->origin, "Log origin for a new ledger");
  key->callback([flags] {
    auto l = OpenLedger(*flags, true);
    std::cout << l->VerifierKey() << "\n";
  });

  auto vkey = std::make_shared<std::string>();
  auto* verify = ledger_cmd->add_subcommand("verify", "Verify a whole ledger file offline");
  AddDbFlags(verify, *flags);
  verify->add_option("--vkey", *vkey, "Verifier key (string or file); default: from --key");
  verify->callback([flags, vkey] { RunVerify(*flags, *vkey); });

  auto receipt_file = std::make_shared<std::string>();
  auto event_file = std::make_shared<std::string>();
  auto* vr = ledger_cmd->add_subcommand("verify-receipt",
                                        "Verify a tlog-proof receipt for an event, offline");
  vr->add_option("--key", *vkey, "Verifier key (string or file)")->required();
  vr->add_option("--receipt", *receipt_file, "Receipt file (tlog-proof@v1 text)")->required();
  vr->add_option("--event", *event_file, "Event file (JSON)")->required();
  vr->callback(
      [vkey, receipt_file, event_file] { RunVerifyReceipt(*vkey, *receipt_file, *event_file); });

#ifdef CUSTODY_HAVE_ATTRIBUTION
  auto bundle_file = std::make_shared<std::string>();
  auto bundle_key = std::make_shared<std::string>();
  auto* vb =
      ledger_cmd->add_subcommand("verify-bundle",
                                 "Verify an evidence bundle (custody evidence) offline: checkpoint "
                                 "signature, every event's inclusion proof, duplicates");
  vb->add_option("FILE", *bundle_file, "Evidence bundle (JSON)")->required();
  vb->add_option("--key", *bundle_key, "Pinned verifier key (string or file); recommended");
  vb->callback([bundle_file, bundle_key] { RunVerifyBundle(*bundle_file, *bundle_key); });
#endif

  auto* demo = ledger_cmd->add_subcommand(
      "demo", "Append sample events, print a receipt and verify it and the ledger");
  AddDbFlags(demo, *flags);
  demo->callback([flags] {
    if (int rc = RunDemo(*flags); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace custody::cli
