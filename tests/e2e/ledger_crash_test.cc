// Crash test: `custody ledger append` is killed with SIGKILL mid-stream. Every receipt it printed
// before dying must still verify, `custody ledger verify` must pass on the file, and the ledger
// must reopen and grow consistently with the checkpoints handed out before the crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/encoding.h"
#include "common/jcs.h"
#include "crypto/key_file.h"
#include "ledger/checkpoint.h"
#include "ledger/ledger.h"
#include "ledger/receipt.h"
#include "store/stores.h"
#include "subprocess.h"

namespace custody {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::Subprocess;

std::string Event(uint64_t n) {
  // ~512 bytes, like the benchmark's events.
  return "{\"kind\":\"crash.test\",\"n\":" + std::to_string(n) + ",\"pad\":\"" +
         std::string(460, 'x') + "\"}";
}

// Extracts a JSON string field from one output line of `ledger append` (our own JCS output).
std::string StringField(const std::string& line, const std::string& name) {
  std::string key = "\"" + name + "\":\"";
  size_t p = line.find(key);
  if (p == std::string::npos) return "";
  std::string out;
  for (size_t i = p + key.size(); i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') break;
    if (c == '\\' && i + 1 < line.size()) {
      char e = line[++i];
      out += e == 'n' ? '\n' : e;
    } else {
      out += c;
    }
  }
  return out;
}

uint64_t IndexField(const std::string& line) {
  size_t p = line.find("\"index\":");
  return std::stoull(line.substr(p + 8));
}

class LedgerCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("custody-crash-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LedgerCrashTest, ReceiptsSurviveSigkillAndTheLedgerVerifies) {
  const std::string db = (dir_ / "ledger.db").string();
  std::string vkey;
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "key", "--db", db}, &vkey), 0);
  while (!vkey.empty() && vkey.back() == '\n') vkey.pop_back();
  auto verifier = ledger::NoteVerifier::FromVerifierKey(vkey);
  ASSERT_TRUE(verifier.ok()) << vkey;

  Subprocess child({CUSTODY_BINARY, "ledger", "append", "--db", db, "--batch-size", "256"});
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    for (uint64_t n = 0; !stop; ++n) {
      if (!child.Write(Event(n) + "\n")) break;  // the child died
    }
  });

  std::vector<std::string> lines;
  std::string line;
  while (lines.size() < 3000 && child.ReadLine(&line)) lines.push_back(line);
  child.Kill(SIGKILL);
  stop = true;
  // Lines already in the pipe were printed before the kill: they count too.
  while (child.ReadLine(&line)) lines.push_back(line);
  child.CloseStdin();
  feeder.join();
  int status = child.Wait();
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GE(lines.size(), 3000u);

  // Every receipt printed before the crash verifies offline, for the right event.
  std::string last_checkpoint;
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(lines[i].rfind("{\"index\":", 0), 0u) << lines[i];
    uint64_t index = IndexField(lines[i]);
    ASSERT_EQ(index, i);  // output stays in input order
    std::string receipt = StringField(lines[i], "receipt");
    std::string event = *CanonicalizeJson(Event(index));
    Status st = ledger::VerifyReceipt(*verifier, receipt, AsBytes(event));
    ASSERT_TRUE(st.ok()) << "receipt " << index << ": " << st.ToString();
    last_checkpoint = ledger::ParseReceipt(receipt)->signed_checkpoint;
  }

  // The file verifies as a whole after the crash.
  std::string out;
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db, "--vkey", vkey}, &out), 0)
      << out;
  EXPECT_NE(out.find("\"ok\":true"), std::string::npos);

  // It reopens, grows, and the new checkpoint is consistent with the last one handed out.
  auto store = store::OpenLedgerFile(db);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto key = crypto::LoadOrCreateEd25519Key(db + ".key");
  ASSERT_TRUE(key.ok());
  auto reopened = ledger::Ledger::Open(std::move(*store), std::move(*key), {});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  uint64_t size_after_crash = (*reopened)->Size();
  EXPECT_GE(size_after_crash, lines.size());
  ASSERT_TRUE((*reopened)->Append(Event(1u << 30)).ok());
  auto old_cp = ledger::OpenCheckpoint(*verifier, last_checkpoint);
  auto new_cp = ledger::OpenCheckpoint(*verifier, (*reopened)->LatestCheckpoint()->note);
  ASSERT_TRUE(old_cp.ok() && new_cp.ok());
  auto proof = (*reopened)->ConsistencyProof(old_cp->size, new_cp->size);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(
      ledger::VerifyConsistency(old_cp->size, new_cp->size, *proof, old_cp->root, new_cp->root)
          .ok());
  (*reopened)->Close();
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db, "--vkey", vkey}, &out), 0);
}

TEST_F(LedgerCrashTest, BadLinesGetErrorsInOrderAndAppendNothing) {
  const std::string db = (dir_ / "bad.db").string();
  Subprocess child({CUSTODY_BINARY, "ledger", "append", "--db", db});
  ASSERT_TRUE(child.Write("{\"a\":1}\n{\"a\":\n[1,2]\n{\"x\":1,\"x\":2}\n\"ok\"\n"));
  child.CloseStdin();
  std::vector<std::string> lines;
  std::string line;
  while (child.ReadLine(&line)) lines.push_back(line);
  int status = child.Wait();
  EXPECT_EQ(WEXITSTATUS(status), 1);  // some lines failed
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(IndexField(lines[0]), 0u);
  EXPECT_NE(lines[1].find("\"line\":2"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("invalid_argument"), std::string::npos);
  EXPECT_EQ(IndexField(lines[2]), 1u);
  EXPECT_NE(lines[3].find("duplicate member name"), std::string::npos) << lines[3];
  EXPECT_EQ(IndexField(lines[4]), 2u);
  std::string out;
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db}, &out), 0);
  EXPECT_NE(out.find("\"leaves\":3"), std::string::npos) << out;
}

// What stdin may hold: CRLF, blank lines (skipped, but counted in error line numbers), a line of
// several MiB (longer than the read buffer), a last line without a newline.
TEST_F(LedgerCrashTest, AppendTakesCrlfBlankLinesLongLinesAndNoFinalNewline) {
  const std::string db = (dir_ / "lines.db").string();
  Subprocess child({CUSTODY_BINARY, "ledger", "append", "--db", db});
  const std::string big = "{\"big\":\"" + std::string(3 << 20, 'b') + "\"}";
  ASSERT_TRUE(child.Write("{\"a\":1}\r\n\n  \t\r\n" + big + "\n{\"bad\":\n{\"c\":3}"));
  child.CloseStdin();
  std::vector<std::string> lines;
  std::string line;
  while (child.ReadLine(&line)) lines.push_back(line);
  EXPECT_EQ(WEXITSTATUS(child.Wait()), 1);  // the bad line
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(IndexField(lines[0]), 0u);
  EXPECT_EQ(IndexField(lines[1]), 1u);
  EXPECT_NE(lines[2].find("\"line\":5"), std::string::npos) << lines[2];
  EXPECT_EQ(IndexField(lines[3]), 2u);
  auto store = store::OpenLedgerFile(db, {.read_only = true, .create_if_missing = false});
  ASSERT_TRUE(store.ok());
  auto leaf = (*store)->GetLeaf(1);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(leaf->data.size(), big.size());
  leaf = (*store)->GetLeaf(2);
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(leaf->data, "{\"c\":3}");
}

// A caller that waits for each receipt before sending the next event gets it: output to a pipe
// is buffered, but written whenever the command would wait.
TEST_F(LedgerCrashTest, AppendAnswersEachLineWhileStdinStaysOpen) {
  const std::string db = (dir_ / "coproc.db").string();
  Subprocess child({CUSTODY_BINARY, "ledger", "append", "--db", db});
  std::string line;
  for (uint64_t n = 0; n < 3; ++n) {
    ASSERT_TRUE(child.Write(Event(n) + "\n"));
    ASSERT_TRUE(child.ReadLine(&line));
    EXPECT_EQ(IndexField(line), n) << line;
  }
  child.CloseStdin();
  EXPECT_FALSE(child.ReadLine(&line));
  EXPECT_EQ(WEXITSTATUS(child.Wait()), 0);
}

TEST_F(LedgerCrashTest, VerifyExitsNonZeroAndNamesTheBadCheckpoint) {
  const std::string db = (dir_ / "t.db").string();
  Subprocess child({CUSTODY_BINARY, "ledger", "append", "--db", db});
  std::string input;
  for (int i = 0; i < 50; ++i) input += Event(i) + "\n";
  ASSERT_TRUE(child.Write(input));
  child.CloseStdin();
  std::string line;
  while (child.ReadLine(&line)) {
  }
  ASSERT_EQ(WEXITSTATUS(child.Wait()), 0);
  // Forge: rename the signer in the newest checkpoint's note, with the sqlite3 shell.
  std::string out;
  ASSERT_EQ(RunCommand({"/usr/bin/sqlite3", db,
                        "UPDATE checkpoints SET note = replace(note, 'custody.local', "
                        "'evil.local') WHERE size = (SELECT MAX(size) FROM checkpoints)"},
                       &out),
            0);
  int rc = RunCommand({CUSTODY_BINARY, "ledger", "verify", "--db", db}, &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("verification FAILED: checkpoint at size 50"), std::string::npos) << out;
}

TEST_F(LedgerCrashTest, VerifyReceiptCommandChecksEventAndKey) {
  const std::string db = (dir_ / "r.db").string();
  Subprocess child({CUSTODY_BINARY, "ledger", "append", "--db", db});
  ASSERT_TRUE(child.Write("{\"tool\":\"create_issue\",\"ok\":true}\n"));
  child.CloseStdin();
  std::string line;
  ASSERT_TRUE(child.ReadLine(&line));
  ASSERT_EQ(WEXITSTATUS(child.Wait()), 0);
  std::string vkey;
  ASSERT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "key", "--db", db}, &vkey), 0);
  vkey.pop_back();
  auto write = [&](const std::string& name, const std::string& content) {
    std::string p = (dir_ / name).string();
    std::ofstream(p) << content;
    return p;
  };
  std::string receipt = write("receipt.txt", StringField(line, "receipt"));
  // Whitespace and member order do not matter: the event is canonicalized first.
  std::string event = write("event.json", "{ \"ok\": true, \"tool\": \"create_issue\" }\n");
  std::string forged = write("forged.json", "{\"tool\":\"delete_repo\",\"ok\":true}");
  std::string out;
  EXPECT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify-receipt", "--key", vkey, "--receipt",
                        receipt, "--event", event},
                       &out),
            0);
  EXPECT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify-receipt", "--key", vkey, "--receipt",
                        receipt, "--event", forged},
                       &out),
            1);
  EXPECT_NE(out.find("event does not match"), std::string::npos) << out;
  auto other = crypto::Ed25519PrivateKey::Generate();
  auto signer = ledger::NoteSigner::Create("custody.local/ledger", *other);
  EXPECT_EQ(RunCommand({CUSTODY_BINARY, "ledger", "verify-receipt", "--key", signer->VerifierKey(),
                        "--receipt", receipt, "--event", event},
                       &out),
            1);
}

}  // namespace
}  // namespace custody
