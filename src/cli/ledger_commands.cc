// `custody ledger ...`: the ledger as a scriptable CLI. Output shapes are relied on by tests and
// later tooling: one JSON object per line for append, plain text for notes and keys.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <deque>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/line_reader.h"
#include "cli/line_writer.h"
#include "common/encoding.h"
#include "common/jcs.h"
#include "common/mutex.h"
#include "crypto/key_file.h"
#include "ledger/ledger.h"
#include "ledger/note.h"
#include "ledger/proof.h"
#include "ledger/receipt.h"
#include "ledger/tile_tree.h"
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

// `custody serve --data-dir DIR` keeps its ledger as DIR/ledger.db and the key as DIR/ledger.key;
// for such a file, that key path.
std::optional<std::filesystem::path> ServeKeyBeside(const std::string& db) {
  std::filesystem::path p(db);
  if (p.filename() != "ledger.db") return std::nullopt;
  return p.parent_path() / "ledger.key";
}

struct LedgerFlags {
  std::string db;
  std::string postgres_url;  // instead of db: the ledger of a PostgreSQL deployment, read only
  std::string key;           // default: see KeyPath()
  std::string origin;
  size_t batch_size = 4096;
  int64_t batch_delay_us = 0;

  // The signing key: --key; else <db>.key if it exists; else the server's key beside a
  // DIR/ledger.db if it exists (a command on the server's ledger must sign with the server's
  // key, never a new one); else <db>.key, which only the commands that may create a ledger
  // create.
  std::string KeyPath() const {
    if (!key.empty()) return key;
    std::string own = db + ".key";
    if (std::filesystem::exists(own)) return own;
    auto served = ServeKeyBeside(db);
    if (served && std::filesystem::exists(*served)) return served->string();
    return own;
  }
  // Where KeyPath() looks, for the error when there is no key.
  std::string KeyPathsTried() const {
    auto served = ServeKeyBeside(db);
    return db + ".key" + (served ? " or " + served->string() : "");
  }
};

void AddDbFlags(CLI::App* cmd, LedgerFlags& f) {
  cmd->add_option("--db", f.db, "Ledger SQLite file")->required();
  cmd->add_option("--key", f.key,
                  "Ed25519 PKCS#8 PEM signing key, mode 0600 (default: <db>.key, or for "
                  "DIR/ledger.db the DIR/ledger.key of `custody serve --data-dir DIR`)");
}

// The reading commands (checkpoint, proof, consistency, verify) take a SQLite file or a
// PostgreSQL URL; the callbacks check that exactly one is given (OnPostgres).
void AddReadFlags(CLI::App* cmd, LedgerFlags& f) {
  cmd->add_option("--db", f.db, "Ledger SQLite file");
  cmd->add_option("--postgres-url", f.postgres_url,
                  "Instead of --db: the ledger in this PostgreSQL database, read only "
                  "(postgresql://USER@HOST/DB; give the password through PGPASSWORD or ~/.pgpass)");
  cmd->add_option("--key", f.key,
                  "Ed25519 PKCS#8 PEM signing key, mode 0600 (default: <db>.key, or for "
                  "DIR/ledger.db the DIR/ledger.key of `custody serve --data-dir DIR`)");
}

// True for --postgres-url, false for --db; fails unless exactly one is given.
bool OnPostgres(const LedgerFlags& f) {
  if (f.db.empty() == f.postgres_url.empty()) {
    Fail(InvalidArgumentError("give one of --db FILE and --postgres-url URL"), 2);
  }
  return !f.postgres_url.empty();
}

// A PostgreSQL ledger, read only: no signing key is needed to read what the nodes signed, and
// none is trusted from the database (verify takes --vkey or --key, as for a file). Errors name
// the database by host, port and name only (PgDb::Redact).
struct PgLedgerView {
  std::unique_ptr<store::LedgerStore> store;
  store::StoredCheckpoint latest;
};

PgLedgerView OpenPgLedger(const LedgerFlags& f) {
  store::StorageOptions o;
  o.backend = store::Backend::kPostgres;
  o.postgres_url = f.postgres_url;
  o.postgres_pool_size = 1;
  PgLedgerView v;
  v.store = OrFail(store::OpenLedgerStore(o, {.read_only = true, .create_if_missing = false}));
  auto latest = OrFail(v.store->LatestCheckpoint());
  if (!latest) Fail(FailedPreconditionError("the ledger is empty: no checkpoint yet"));
  v.latest = std::move(*latest);
  return v;
}

// The tree of the latest checkpoint, for proofs: its tiles are read from the store.
std::unique_ptr<ledger::TileTree> LoadTree(PgLedgerView& v) {
  auto tree = std::make_unique<ledger::TileTree>(*v.store, /*cache_tiles=*/64);
  if (Status st = tree->Load(v.latest.size); !st.ok()) Fail(st);
  return tree;
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
      return NotFoundError("no signing key at " + f.KeyPathsTried() + " (use --key)");
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

// The answers to the lines in flight, in input order. The reader adds a slot per line and waits
// while too many are unanswered (to cap memory); the ledger's callbacks fill the slots on the
// sequencer thread; the writer takes the answered ones from the front. One lock per line and a
// wake-up only when someone waits for it: a future per line cost more than the line's append.
class InOrderAnswers {
 public:
  struct Answer {
    uint64_t line = 0;                                   // input line number, for errors
    std::optional<Result<ledger::AppendResult>> result;  // empty until answered
  };

  explicit InOrderAnswers(size_t max_in_flight) : max_in_flight_(max_in_flight) {}

  // Reader: a slot for input line `line`; returns its sequence number.
  uint64_t Add(uint64_t line) {
    MutexLock lock(mu_);
    if (slots_.size() >= max_in_flight_) {
      reader_waiting_ = true;
      reader_cv_.Wait(mu_, [&]() REQUIRES(mu_) { return slots_.size() < max_in_flight_; });
      reader_waiting_ = false;
    }
    slots_.push_back(Answer{.line = line, .result = std::nullopt});
    return front_seq_ + slots_.size() - 1;
  }

  // Any thread: the answer for slot `seq`.
  void Fill(uint64_t seq, Result<ledger::AppendResult> r) {
    bool wake;
    {
      MutexLock lock(mu_);
      slots_[seq - front_seq_].result.emplace(std::move(r));
      wake = writer_waiting_ && seq == front_seq_;
    }
    if (wake) writer_cv_.NotifyOne();
  }

  // Reader: no more lines.
  void Finish() {
    {
      MutexLock lock(mu_);
      finished_ = true;
    }
    writer_cv_.NotifyOne();
  }

  // Writer: moves the answered slots at the front into `out`. With `wait`, first waits until
  // there is one, or until there are none left to come. Returns false once all are taken.
  bool Take(std::vector<Answer>* out, bool wait) {
    MutexLock lock(mu_);
    auto front_ready = [&]() REQUIRES(mu_) {
      return !slots_.empty() && slots_.front().result.has_value();
    };
    if (wait && !front_ready() && !(finished_ && slots_.empty())) {
      writer_waiting_ = true;
      writer_cv_.Wait(
          mu_, [&]() REQUIRES(mu_) { return front_ready() || (finished_ && slots_.empty()); });
      writer_waiting_ = false;
    }
    while (front_ready()) {
      out->push_back(std::move(slots_.front()));
      slots_.pop_front();
      ++front_seq_;
    }
    bool wake = reader_waiting_ && !out->empty();
    bool more = !(finished_ && slots_.empty());
    lock.Unlock();
    if (wake) reader_cv_.NotifyOne();
    return more || !out->empty();
  }

 private:
  const size_t max_in_flight_;
  Mutex mu_;
  CondVar reader_cv_;
  CondVar writer_cv_;
  std::deque<Answer> slots_ GUARDED_BY(mu_);
  uint64_t front_seq_ GUARDED_BY(mu_) = 0;  // sequence number of slots_.front()
  bool finished_ GUARDED_BY(mu_) = false;
  bool reader_waiting_ GUARDED_BY(mu_) = false;
  bool writer_waiting_ GUARDED_BY(mu_) = false;
};

// Reads events from stdin and keeps reading while earlier lines wait for their batch; a writer
// thread prints the answers in input order, flushing whenever it would wait, so a consumer
// reading receipts as they come sees each batch's at once.
int RunAppend(const LedgerFlags& f) {
  auto ledger = OpenLedger(f, /*create=*/true);
  // Four default batches ahead keeps the sequencer fed; more only grows the heap (at 65,536 the
  // page faults of that growth cost a third more system time).
  InOrderAnswers answers(/*max_in_flight=*/1 << 14);
  bool any_error = false;  // written by the writer thread only, read after join
  Status write_status;     // likewise

  std::thread writer([&] {
    LineWriter out(STDOUT_FILENO, ::isatty(STDOUT_FILENO) == 1);
    std::vector<InOrderAnswers::Answer> ready;
    bool more = true;
    while (more) {
      ready.clear();
      more = answers.Take(&ready, /*wait=*/false);
      if (ready.empty()) {
        if (Status st = out.Flush(); !st.ok() && write_status.ok()) write_status = st;
        more = answers.Take(&ready, /*wait=*/true);
      }
      for (auto& a : ready) {
        any_error |= !a.result->ok();
        std::string line =
            a.result->ok() ? AppendLine(**a.result) : ErrorLine(a.line, a.result->status());
        if (Status st = out.Write(line); !st.ok() && write_status.ok()) write_status = st;
      }
    }
    if (Status st = out.Flush(); !st.ok() && write_status.ok()) write_status = st;
  });

  LineReader in(STDIN_FILENO);
  Status read_status;
  std::string_view text;
  uint64_t line_no = 0;
  while (true) {
    Result<bool> more = in.Next(&text);
    if (!more.ok()) {
      read_status = more.status();
      break;
    }
    if (!*more) break;
    ++line_no;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank: skipped
    uint64_t seq = answers.Add(line_no);
    Status st = ledger->AppendAsync(text, {}, [&answers, seq](Result<ledger::AppendResult> r) {
      answers.Fill(seq, std::move(r));
    });
    if (!st.ok()) answers.Fill(seq, std::move(st));
  }
  answers.Finish();
  writer.join();
  ledger->Close();
  if (!read_status.ok()) std::cerr << "custody: " << read_status.ToString() << "\n";
  if (!write_status.ok()) std::cerr << "custody: " << write_status.ToString() << "\n";
  return any_error || !read_status.ok() || !write_status.ok() ? 1 : 0;
}

// The key to verify with: --vkey, else the public half of --key (for a file, also the key
// beside it). Never one the ledger's own store offers: the store is what is being checked.
Result<ledger::NoteVerifier> VerifierFor(const LedgerFlags& f, store::LedgerStore& store,
                                         const std::string& vkey) {
  if (!vkey.empty()) {
    std::string text = vkey;
    if (std::filesystem::exists(vkey)) {
      ASSIGN_OR_RETURN(text, crypto::ReadFileToString(vkey));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    }
    return ledger::NoteVerifier::FromVerifierKey(text);
  }
  if (!f.postgres_url.empty() && f.key.empty()) {
    return InvalidArgumentError(
        "a PostgreSQL ledger is verified with --vkey (the verifier key the nodes print, or "
        "a file holding it) or --key");
  }
  if (!std::filesystem::exists(f.KeyPath())) {
    return NotFoundError("no key to verify with at " + f.KeyPathsTried() +
                         ": pass --vkey or --key");
  }
  ASSIGN_OR_RETURN(crypto::Ed25519PrivateKey key, crypto::LoadOrCreateEd25519Key(f.KeyPath()));
  ASSIGN_OR_RETURN(std::optional<std::string> origin, store.GetMeta("origin"));
  ASSIGN_OR_RETURN(ledger::NoteSigner signer,
                   ledger::NoteSigner::Create(origin.value_or(kDefaultOrigin), key));
  return ledger::NoteVerifier::FromVerifierKey(signer.VerifierKey());
}

int RunVerify(const LedgerFlags& f, const std::string& vkey) {
  Result<std::unique_ptr<store::LedgerStore>> store = UnavailableError("");
  if (OnPostgres(f)) {
    store::StorageOptions o;
    o.backend = store::Backend::kPostgres;
    o.postgres_url = f.postgres_url;
    o.postgres_pool_size = 1;
    // An unreachable or empty database is not evidence of tampering: its own error.
    store = store::OpenLedgerStore(o, {.read_only = true, .create_if_missing = false});
    if (!store.ok()) Fail(store.status());
  } else {
    if (!std::filesystem::exists(f.db)) Fail(NotFoundError("no ledger at " + f.db));
    store = store::OpenLedgerFile(f.db, {.read_only = true, .create_if_missing = false});
    if (!store.ok()) Fail(DataLossError("cannot open the ledger: " + store.status().message()));
  }
  auto verifier = OrFail(VerifierFor(f, **store, vkey));
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
  AddReadFlags(checkpoint, *flags);
  checkpoint->callback([flags] {
    if (OnPostgres(*flags)) {
      std::cout << OpenPgLedger(*flags).latest.note;
      return;
    }
    auto l = OpenLedger(*flags, false);
    std::cout << OrFail(l->LatestCheckpoint()).note;
  });

  auto index = std::make_shared<uint64_t>(0);
  auto size = std::make_shared<uint64_t>(0);
  auto* proof = ledger_cmd->add_subcommand("proof", "Print an inclusion proof as JSON");
  AddReadFlags(proof, *flags);
  proof->add_option("--index", *index, "Leaf index")->required();
  proof->add_option("--size", *size, "Tree size (default: the latest checkpoint)");
  proof->callback([flags, index, size] {
    if (OnPostgres(*flags)) {
      PgLedgerView v = OpenPgLedger(*flags);
      uint64_t latest = v.latest.size;
      uint64_t m = *size == 0 ? latest : *size;
      if (m > latest) {
        Fail(InvalidArgumentError("size " + std::to_string(m) + " exceeds the ledger size " +
                                  std::to_string(latest)));
      }
      if (*index >= m) {
        Fail(InvalidArgumentError("index " + std::to_string(*index) + " is not below size " +
                                  std::to_string(m)));
      }
      auto tree = LoadTree(v);
      auto hashes = OrFail(ledger::InclusionProof(*index, m, *tree));
      auto leaf = OrFail(v.store->GetLeaf(*index));
      std::string out = "{\"index\":" + std::to_string(*index) + ",\"size\":" + std::to_string(m) +
                        ",\"leaf_hash\":\"" + HexEncode(leaf.leaf_hash) +
                        "\",\"hashes\":" + HashesJson(hashes);
      if (m == latest) {
        ledger::Receipt r;
        r.index = *index;
        r.proof = hashes;
        r.signed_checkpoint = v.latest.note;
        out += ",\"receipt\":";
        AppendJcsString(ledger::FormatReceipt(r), out);
      }
      std::cout << out << "}\n";
      return;
    }
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
  AddReadFlags(consistency, *flags);
  consistency->add_option("--from", *from, "Older tree size")->required();
  consistency->add_option("--to", *to, "Newer tree size")->required();
  consistency->callback([flags, from, to] {
    std::vector<Hash> hashes;
    if (OnPostgres(*flags)) {
      PgLedgerView v = OpenPgLedger(*flags);
      if (*to > v.latest.size) {
        Fail(InvalidArgumentError("size " + std::to_string(*to) + " exceeds the ledger size " +
                                  std::to_string(v.latest.size)));
      }
      if (*from > *to) {
        Fail(InvalidArgumentError("from (" + std::to_string(*from) + ") is greater than to (" +
                                  std::to_string(*to) + ")"));
      }
      auto tree = LoadTree(v);
      hashes = OrFail(ledger::ConsistencyProof(*from, *to, *tree));
    } else {
      auto l = OpenLedger(*flags, false);
      hashes = OrFail(l->ConsistencyProof(*from, *to));
    }
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
  auto* verify = ledger_cmd->add_subcommand(
      "verify", "Verify a whole ledger (a file, or a PostgreSQL database) against a key");
  AddReadFlags(verify, *flags);
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
