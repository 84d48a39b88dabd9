#include "ledger/receipt.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/encoding.h"
#include "ledger/checkpoint.h"
#include "ledger/proof.h"
#include "ledger/proof_test_util.h"

namespace custody::ledger {
namespace {

using testing::MemoryTree;

constexpr std::string_view kOrigin = "custody.example/ledger";

// A small log of JSON events, its signer, and receipts for every event.
class ReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::Ed25519PrivateKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_shared<const crypto::Ed25519PrivateKey>(std::move(key).value());
    auto signer = NoteSigner::Create(std::string(kOrigin), key_);
    ASSERT_TRUE(signer.ok());
    signer_ = std::make_unique<NoteSigner>(std::move(signer).value());
    auto verifier = NoteVerifier::FromVerifierKey(signer_->VerifierKey());
    ASSERT_TRUE(verifier.ok());
    verifier_ = std::make_unique<NoteVerifier>(std::move(verifier).value());

    std::vector<Hash> leaves;
    for (int i = 0; i < 13; ++i) {
      events_.push_back("{\"kind\":\"action.decision\",\"n\":" + std::to_string(i) + "}");
      leaves.push_back(HashLeaf(events_.back()));
    }
    tree_ = std::make_unique<MemoryTree>(leaves);
    checkpoint_ = {std::string(kOrigin), leaves.size(), RootFromLeafHashes(leaves), {}};
    signed_checkpoint_ = *SignCheckpoint(*signer_, checkpoint_);
  }

  std::string MakeReceipt(uint64_t index) {
    Receipt r;
    r.index = index;
    r.proof = *InclusionProof(index, checkpoint_.size, *tree_);
    r.signed_checkpoint = signed_checkpoint_;
    return FormatReceipt(r);
  }

  Status Verify(std::string_view receipt, std::string_view event) {
    return VerifyReceipt(*verifier_, receipt, AsBytes(event));
  }

  std::shared_ptr<const crypto::Ed25519PrivateKey> key_;
  std::unique_ptr<NoteSigner> signer_;
  std::unique_ptr<NoteVerifier> verifier_;
  std::vector<std::string> events_;
  std::unique_ptr<MemoryTree> tree_;
  Checkpoint checkpoint_;
  std::string signed_checkpoint_;
};

TEST_F(ReceiptTest, FormatsTlogProofText) {
  Receipt r;
  r.index = 5;
  r.proof = {Hash{}, Hash{}};
  r.proof[1][0] = 0xff;
  r.signed_checkpoint = signed_checkpoint_;
  const std::string text = FormatReceipt(r);
  EXPECT_EQ(text,
            "c2sp.org/tlog-proof@v1\nindex 5\n"
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
            "/wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
            "\n" +
                signed_checkpoint_);
  EXPECT_EQ(*ParseReceipt(text), r);
  r.extra = "opaque";
  const std::string with_extra = FormatReceipt(r);
  EXPECT_TRUE(with_extra.starts_with("c2sp.org/tlog-proof@v1\nextra b3BhcXVl\nindex 5\n"));
  EXPECT_EQ(*ParseReceipt(with_extra), r);
}

TEST_F(ReceiptTest, ParsesTheSpecExample) {
  // c2sp.org/tlog-proof's example (its signatures are elided, so only the syntax is checked).
  const std::string spec =
      "c2sp.org/tlog-proof@v1\n"
      "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
      "index 73894\n"
      "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
      "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
      "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
      "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
      "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
      "\n"
      "example.com/fancylog\n"
      "109482\n"
      "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
      "\n"
      "\xE2\x80\x94 example.com/fancylog hI2DJw[...]1roloI=\n";
  auto r = ParseReceipt(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->index, 73894u);
  EXPECT_TRUE(r->extra.starts_with("age-v1.2.1-darwin-arm64.tar.gz"));
  ASSERT_EQ(r->proof.size(), 5u);
  EXPECT_EQ(Base64Encode(r->proof[4]), "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=");
  EXPECT_TRUE(r->signed_checkpoint.starts_with("example.com/fancylog\n109482\n"));
  EXPECT_EQ(FormatReceipt(*r), spec);
}

TEST_F(ReceiptTest, EveryReceiptVerifiesWithNothingButTheKey) {
  for (uint64_t i = 0; i < events_.size(); ++i) {
    const std::string receipt = MakeReceipt(i);
    EXPECT_TRUE(Verify(receipt, events_[i]).ok())
        << i << ": " << Verify(receipt, events_[i]).ToString();
    EXPECT_TRUE(VerifyReceipt(*verifier_, receipt, AsBytes(events_[i]), kOrigin).ok());
  }
}

TEST_F(ReceiptTest, RejectsTamperedEventBytes) {
  const std::string receipt = MakeReceipt(4);
  std::string event = events_[4];
  for (size_t i = 0; i < event.size(); ++i) {
    std::string bad = event;
    bad[i] ^= 0x01;
    Status s = Verify(receipt, bad);
    EXPECT_EQ(s.code(), StatusCode::kUnauthenticated) << i;
    EXPECT_NE(s.message().find("inclusion proof"), std::string::npos) << s.message();
  }
  EXPECT_FALSE(Verify(receipt, events_[5]).ok());  // another event
  EXPECT_FALSE(Verify(receipt, event + " ").ok());
}

TEST_F(ReceiptTest, RejectsATamperedProofLine) {
  const std::string receipt = MakeReceipt(6);
  const size_t proof_start = receipt.find("index 6\n") + 8;
  const size_t proof_end = receipt.find("\n\n");
  for (size_t i = proof_start; i < proof_end; ++i) {
    if (receipt[i] == '\n' || receipt[i] == '=') continue;
    std::string bad = receipt;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(Verify(bad, events_[6]).ok()) << i;
  }
  // A proof line dropped or duplicated.
  std::string dropped = receipt;
  dropped.erase(proof_start, 45);
  EXPECT_FALSE(Verify(dropped, events_[6]).ok());
  std::string duplicated = receipt;
  duplicated.insert(proof_start, receipt.substr(proof_start, 45));
  EXPECT_FALSE(Verify(duplicated, events_[6]).ok());
}

TEST_F(ReceiptTest, RejectsATamperedCheckpoint) {
  const std::string receipt = MakeReceipt(2);
  const size_t cp_start = receipt.find("\n\n") + 2;
  const size_t sig_start = receipt.find("\xE2\x80\x94");
  for (size_t i = cp_start; i < sig_start; ++i) {
    if (receipt[i] == '\n') continue;
    std::string bad = receipt;
    bad[i] = bad[i] == '1' ? '2' : '1';
    Status s = Verify(bad, events_[2]);
    EXPECT_FALSE(s.ok()) << i;
    EXPECT_NE(s.message().find("checkpoint"), std::string::npos) << s.message();
  }
  // The signature itself.
  std::string bad_sig = receipt;
  bad_sig[receipt.size() - 10] = bad_sig[receipt.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(Verify(bad_sig, events_[2]).ok());
  // A checkpoint for another tree, correctly signed: the proof does not lead to its root.
  Checkpoint other = checkpoint_;
  other.root[0] ^= 1;
  std::string swapped = receipt.substr(0, cp_start) + *SignCheckpoint(*signer_, other);
  EXPECT_EQ(Verify(swapped, events_[2]).code(), StatusCode::kUnauthenticated);
}

TEST_F(ReceiptTest, RejectsTheWrongKeyAndOrigin) {
  const std::string receipt = MakeReceipt(3);
  auto other_key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(other_key.ok());
  // Same name, another key: no signature by it.
  const NoteVerifier impostor =
      NoteVerifier::FromPublicKey(std::string(kOrigin), other_key->public_key());
  Status s = VerifyReceipt(impostor, receipt, AsBytes(events_[3]));
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("no signature"), std::string::npos) << s.message();
  s = VerifyReceipt(*verifier_, receipt, AsBytes(events_[3]), "other.example/ledger");
  EXPECT_NE(s.message().find("origin"), std::string::npos) << s.message();
}

TEST_F(ReceiptTest, RejectsAnIndexNotBelowTheTreeSize) {
  Receipt r;
  r.index = checkpoint_.size;
  r.signed_checkpoint = signed_checkpoint_;
  Status s = Verify(FormatReceipt(r), events_[0]);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not below"), std::string::npos) << s.message();
  r.index = UINT64_MAX;
  EXPECT_FALSE(Verify(FormatReceipt(r), events_[0]).ok());
}

TEST_F(ReceiptTest, RejectsMalformedReceipts) {
  const std::string good = MakeReceipt(1);
  const std::string cp = "\n" + signed_checkpoint_;
  const std::string h = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
  for (const std::string& text : std::vector<std::string>{
           std::string(),
           good.substr(1),                             // header damaged
           "c2sp.org/tlog-proof@v2\nindex 1\n" + cp,   //
           "c2sp.org/tlog-proof@v1\n" + cp,            // no index
           "c2sp.org/tlog-proof@v1\nindex 01\n" + cp,  // leading zero
           "c2sp.org/tlog-proof@v1\nindex -1\n" + cp,  //
           "c2sp.org/tlog-proof@v1\nindex \n" + cp,    //
           "c2sp.org/tlog-proof@v1\nindex 1 \n" + cp,  //
           "c2sp.org/tlog-proof@v1\nindex 18446744073709551616\n" + cp,
           "c2sp.org/tlog-proof@v1\nindex=1\n" + cp,            //
           "c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n" + cp,  // bad extra
           "c2sp.org/tlog-proof@v1\nindex 1\nAAAA\n" + cp,      // short hash
           "c2sp.org/tlog-proof@v1\nindex 1\n" + h.substr(0, 43) + "\n" + cp,
           "c2sp.org/tlog-proof@v1\nindex 1\n" + h,         // no blank line
           "c2sp.org/tlog-proof@v1\nindex 1\n" + h + "\n",  // no checkpoint
       }) {
    auto r = ParseReceipt(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_FALSE(Verify(text, events_[1]).ok()) << text;
  }
  std::string too_many = "c2sp.org/tlog-proof@v1\nindex 1\n";
  for (int i = 0; i < 65; ++i) too_many += h;
  EXPECT_FALSE(ParseReceipt(too_many + cp).ok());
}

}  // namespace
}  // namespace custody::ledger
