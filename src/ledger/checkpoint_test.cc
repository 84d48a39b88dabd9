#include "ledger/checkpoint.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/encoding.h"

namespace custody::ledger {
namespace {

Checkpoint Sample() {
  Checkpoint cp;
  cp.origin = "custody.example/ledger";
  cp.size = 20852163;
  for (size_t i = 0; i < cp.root.size(); ++i) cp.root[i] = static_cast<uint8_t>(i * 7);
  return cp;
}

TEST(CheckpointTest, ParsesTheSpecExampleBody) {
  auto cp = ParseCheckpointBody(
      "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
  ASSERT_TRUE(cp.ok()) << cp.status().ToString();
  EXPECT_EQ(cp->origin, "example.com/behind-the-sofa");
  EXPECT_EQ(cp->size, 20852163u);
  EXPECT_EQ(Base64Encode(cp->root), "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=");
  EXPECT_TRUE(cp->extensions.empty());
  EXPECT_EQ(
      FormatCheckpointBody(*cp),
      "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n");
}

TEST(CheckpointTest, RoundTrips) {
  Checkpoint cp = Sample();
  EXPECT_EQ(*ParseCheckpointBody(FormatCheckpointBody(cp)), cp);
  cp.size = 0;
  cp.extensions = {"ext one", "\xE2\x9C\x93 two"};
  const std::string body = FormatCheckpointBody(cp);
  EXPECT_TRUE(body.starts_with("custody.example/ledger\n0\n"));
  EXPECT_TRUE(body.ends_with("\next one\n\xE2\x9C\x93 two\n"));
  EXPECT_EQ(*ParseCheckpointBody(body), cp);
  cp.size = UINT64_MAX;
  EXPECT_EQ(*ParseCheckpointBody(FormatCheckpointBody(cp)), cp);
}

TEST(CheckpointTest, RejectsMalformedBodies) {
  const std::string root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
  for (const std::string& body : std::vector<std::string>{
           std::string(),
           "o\n1\n" + root,                                         // no final newline
           "o\n1\n",                                                // two lines
           "\n1\n" + root + "\n",                                   // empty origin
           "o\n01\n" + root + "\n",                                 // leading zero
           "o\n00\n" + root + "\n",                                 //
           "o\n\n" + root + "\n",                                   // empty size
           "o\n-1\n" + root + "\n",                                 //
           "o\n+1\n" + root + "\n",                                 //
           "o\n 1\n" + root + "\n",                                 //
           "o\n1 \n" + root + "\n",                                 //
           "o\n1a\n" + root + "\n",                                 //
           "o\n18446744073709551616\n" + root + "\n",               // 2^64
           "o\n1\n" + root.substr(0, 43) + "\n",                    // bad padding
           "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n",  // 31 bytes
           "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n",  // 33 bytes
           "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",  // base64url
           "o\n1\n" + root + "\n\n",                                // empty extension line
           "o\n1\n" + root + "\next\n\n",                           //
           "o\r\n1\n" + root + "\n",                                // control character
           "o\n1\r\n" + root + "\n",                                //
           "o\n1\n" + root + "\r\n",                                //
       }) {
    auto cp = ParseCheckpointBody(body);
    EXPECT_FALSE(cp.ok()) << body;
    if (!cp.ok()) {
      EXPECT_EQ(cp.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(CheckpointTest, SignAndOpen) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto signer = NoteSigner::Create("custody.example/ledger", *key);
  ASSERT_TRUE(signer.ok());
  auto verifier = NoteVerifier::FromVerifierKey(signer->VerifierKey());
  ASSERT_TRUE(verifier.ok());
  const Checkpoint cp = Sample();
  auto note = SignCheckpoint(*signer, cp);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_TRUE(
      note->starts_with(FormatCheckpointBody(cp) + "\n\xE2\x80\x94 custody.example/ledger "));
  EXPECT_EQ(*OpenCheckpoint(*verifier, *note), cp);
  EXPECT_EQ(*OpenCheckpoint(*verifier, *note, "custody.example/ledger"), cp);
  auto wrong_origin = OpenCheckpoint(*verifier, *note, "other.example/log");
  EXPECT_EQ(wrong_origin.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(wrong_origin.status().message().find("origin"), std::string::npos);
  // Edited size: the signature no longer verifies.
  std::string edited = *note;
  edited.replace(edited.find("20852163"), 8, "20852164");
  EXPECT_EQ(OpenCheckpoint(*verifier, edited).status().code(), StatusCode::kUnauthenticated);

  Checkpoint bad = cp;
  bad.origin = "two\nlines";
  EXPECT_FALSE(SignCheckpoint(*signer, bad).ok());
  bad = cp;
  bad.extensions = {""};
  EXPECT_FALSE(SignCheckpoint(*signer, bad).ok());
}

}  // namespace
}  // namespace custody::ledger
