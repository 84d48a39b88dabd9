// Tamper tests on a real ledger file: every kind of edit must be detected and named.
#include "ledger/verifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "ledger/ledger.h"
#include "store/stores.h"
#include "store/testing/sqlite_file.h"

namespace custody::ledger {
namespace {

namespace fs = std::filesystem;
constexpr const char* kOrigin = "tamper.example/log";

class VerifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("custody-verifier-test-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    auto key = crypto::Ed25519PrivateKey::FromSeed(std::vector<uint8_t>(32, 9));
    auto store = store::OpenLedgerFile(Pristine());
    ASSERT_TRUE(store.ok());
    LedgerOptions options;
    options.origin = kOrigin;
    options.max_batch = 64;
    auto ledger = Ledger::Open(std::move(*store), std::move(*key), options);
    ASSERT_TRUE(ledger.ok());
    vkey_ = new std::string((*ledger)->VerifierKey());
    // 600 events in batches of up to 64: several checkpoints and several full tiles.
    for (int round = 0; round < 10; ++round) {
      std::vector<std::future<Result<AppendResult>>> futures;
      for (int i = 0; i < 60; ++i) {
        auto p = std::make_shared<std::promise<Result<AppendResult>>>();
        futures.push_back(p->get_future());
        std::string e = "{\"n\":" + std::to_string(round * 60 + i) + ",\"kind\":\"test\"}";
        ASSERT_TRUE(
            (*ledger)
                ->AppendAsync(e, {}, [p](Result<AppendResult> r) { p->set_value(std::move(r)); })
                .ok());
      }
      for (auto& f : futures) ASSERT_TRUE(f.get().ok());
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete vkey_;
  }

  static std::string Pristine() { return (*dir_ / "pristine.db").string(); }

  // Copies the pristine ledger, applies `sql` to the copy, and verifies it.
  Result<LedgerVerifyReport> VerifyAfter(const std::string& sql) {
    std::string path =
        (*dir_ /
         (std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".db"))
            .string();
    fs::remove(path);
    fs::copy_file(Pristine(), path);
    if (!sql.empty()) {
      Status st = store::testing::ExecOnFile(path, sql);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    return VerifyPath(path);
  }

  static Result<LedgerVerifyReport> VerifyPath(const std::string& path,
                                               const std::string& vkey = "") {
    ASSIGN_OR_RETURN(auto store,
                     store::OpenLedgerFile(path, {.read_only = true, .create_if_missing = false}));
    ASSIGN_OR_RETURN(NoteVerifier verifier,
                     NoteVerifier::FromVerifierKey(vkey.empty() ? *vkey_ : vkey));
    return VerifyLedger(*store, verifier, kOrigin);
  }

  static void ExpectDetected(const Result<LedgerVerifyReport>& r, const std::string& names) {
    ASSERT_FALSE(r.ok()) << "tampering not detected; expected: " << names;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_NE(r.status().message().find(names), std::string::npos)
        << "message \"" << r.status().message() << "\" does not name \"" << names << "\"";
  }

  static fs::path* dir_;
  static std::string* vkey_;
};

fs::path* VerifierTest::dir_ = nullptr;
std::string* VerifierTest::vkey_ = nullptr;

TEST_F(VerifierTest, PristineLedgerVerifies) {
  auto r = VerifyAfter("");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->leaves, 600u);
  EXPECT_GE(r->checkpoints, 10u);
}

TEST_F(VerifierTest, ChangedLeafByteIsNamed) {
  // Flip one byte of leaf 137's stored JSON ("n":137 -> "n":937).
  ExpectDetected(VerifyAfter("UPDATE leaves SET data = CAST(replace(CAST(data AS TEXT), "
                             "'\"n\":137', '\"n\":937') AS BLOB) WHERE idx = 137"),
                 "leaf 137");
}

TEST_F(VerifierTest, ChangedLeafWithRecomputedLeafHashIsNamed) {
  // An attacker who also rewrites the leaf-hash column is caught by the tile row.
  std::string probe = (*dir_ / "probe.db").string();
  fs::remove(probe);
  fs::copy_file(Pristine(), probe);
  std::string forged = "{\"kind\":\"test\",\"n\":999999}";
  Hash h = HashLeaf(forged);
  Status st = store::testing::ExecOnFile(
      probe, "UPDATE leaves SET data = ?1, leaf_hash = ?2 WHERE idx = 300",
      {forged, std::string(reinterpret_cast<const char*>(h.data()), h.size())});
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectDetected(VerifyPath(probe), "leaf 300");
}

TEST_F(VerifierTest, DeletedRowIsNamed) {
  ExpectDetected(VerifyAfter("DELETE FROM leaves WHERE idx = 200"), "leaf 200 is missing");
}

TEST_F(VerifierTest, DeletedLastRowsAreNamed) {
  ExpectDetected(VerifyAfter("DELETE FROM leaves WHERE idx >= 590"), "checkpoint at size 600");
}

TEST_F(VerifierTest, SwappedRowsAreNamed) {
  ExpectDetected(VerifyAfter("UPDATE leaves SET idx = -1 WHERE idx = 10;"
                             "UPDATE leaves SET idx = 10 WHERE idx = 11;"
                             "UPDATE leaves SET idx = 11 WHERE idx = -1;"),
                 "leaf 10");
}

TEST_F(VerifierTest, EditedCheckpointIsNamed) {
  // Change the size line of the signed note of the checkpoint at size 120 to 121.
  ExpectDetected(VerifyAfter("UPDATE checkpoints SET note = replace(note, '\n120\n', '\n121\n') "
                             "WHERE size = 120"),
                 "checkpoint at size 120");
}

TEST_F(VerifierTest, ForgedCheckpointRootIsNamed) {
  ExpectDetected(VerifyAfter("UPDATE checkpoints SET root = zeroblob(32) WHERE size = 180"),
                 "checkpoint at size 180");
}

TEST_F(VerifierTest, EditedTileIsNamed) {
  ExpectDetected(VerifyAfter("UPDATE tiles SET hashes = zeroblob(32) || substr(hashes, 33) "
                             "WHERE level = 0 AND idx = 1"),
                 "leaf 256");
}

TEST_F(VerifierTest, UnsignedExtraLeafIsNamed) {
  ExpectDetected(VerifyAfter("INSERT INTO leaves(idx, leaf_hash, data) SELECT 600, leaf_hash, "
                             "data FROM leaves WHERE idx = 599"),
                 "not covered by any checkpoint");
}

TEST_F(VerifierTest, WrongVerifierKeyIsNamed) {
  auto other = crypto::Ed25519PrivateKey::Generate();
  auto signer = NoteSigner::Create(kOrigin, *other);
  std::string path = (*dir_ / "wrongkey.db").string();
  fs::remove(path);
  fs::copy_file(Pristine(), path);
  auto r = VerifyPath(path, signer->VerifierKey());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checkpoint at size"), std::string::npos);
}

TEST_F(VerifierTest, TruncatedFileIsDetected) {
  std::string path = (*dir_ / "truncated.db").string();
  fs::remove(path);
  fs::copy_file(Pristine(), path);
  fs::resize_file(path, fs::file_size(path) / 2);
  auto r = VerifyPath(path);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kDataLoss) << r.status().ToString();
}

}  // namespace
}  // namespace custody::ledger
