#include "ledger/note.h"

#include <gtest/gtest.h>

#include <string>

#include "common/encoding.h"

namespace custody::ledger {
namespace {

// c2sp.org/signed-note, "Verifier keys" / "Example": this key verifies this note.
constexpr std::string_view kSpecVkey =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
constexpr std::string_view kSpecText = "This is an example message.\n";
constexpr std::string_view kSpecNote =
    "This is an example message.\n"
    "\n"
    "\xE2\x80\x94 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
    "\n";

// golang.org/x/mod/sumdb/note (the implementation signed-note was written from): its example
// signer key, verifier key and signed note. Ed25519 is deterministic, so signing must reproduce
// the note byte for byte.
constexpr std::string_view kPeterSeedB64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr std::string_view kPeterVkey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view kPeterText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr std::string_view kPeterNote =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

crypto::Ed25519PrivateKey PeterKey() {
  auto typed = Base64Decode(kPeterSeedB64);
  EXPECT_TRUE(typed.ok());
  EXPECT_EQ(typed->size(), 33u);
  auto key = crypto::Ed25519PrivateKey::FromSeed(std::span<const uint8_t>(*typed).subspan(1));
  EXPECT_TRUE(key.ok()) << key.status().ToString();
  return std::move(key).value();
}

NoteVerifier SpecVerifier() {
  auto v = NoteVerifier::FromVerifierKey(kSpecVkey);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return std::move(v).value();
}

TEST(NoteTest, AcceptsTheSpecExample) {
  const NoteVerifier v = SpecVerifier();
  EXPECT_EQ(v.name(), "example.com/foo");
  EXPECT_EQ(v.key_id(), 0x530d903au);
  EXPECT_EQ(v.VerifierKey(), kSpecVkey);
  auto text = v.Verify(kSpecNote);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, kSpecText);
}

TEST(NoteTest, RejectsTheSpecExampleWithAnyBodyByteChanged) {
  const NoteVerifier v = SpecVerifier();
  for (size_t i = 0; i < kSpecText.size(); ++i) {
    std::string note(kSpecNote);
    note[i] = note[i] == 'a' ? 'b' : 'a';
    auto r = v.Verify(note);
    EXPECT_FALSE(r.ok()) << "byte " << i;
  }
}

TEST(NoteTest, RejectsTheSpecExampleWithAnySignatureCharacterChanged) {
  const NoteVerifier v = SpecVerifier();
  const size_t sig_start = std::string_view(kSpecNote).rfind(' ') + 1;
  for (size_t i = sig_start; i + 1 < kSpecNote.size(); ++i) {
    std::string note(kSpecNote);
    if (note[i] == '=') continue;
    note[i] = note[i] == 'A' ? 'B' : 'A';
    auto r = v.Verify(note);
    EXPECT_FALSE(r.ok()) << "offset " << i;
  }
  // Changing a byte of the Ed25519 signature itself (not the key ID) is a bad signature.
  std::string note(kSpecNote);
  note[sig_start + 20] = note[sig_start + 20] == 'A' ? 'B' : 'A';
  auto r = v.Verify(note);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("bad signature"), std::string::npos);
}

TEST(NoteTest, RejectsTheSpecExampleUnderAnotherKeyName) {
  const NoteVerifier spec = SpecVerifier();
  // Same public key under another name: a different key, so the note has no signature by it.
  const NoteVerifier other = NoteVerifier::FromPublicKey("example.com/bar", spec.public_key());
  auto r = other.Verify(kSpecNote);
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("no signature"), std::string::npos);
  // The signature line renamed: ignored as an unknown key's, so nothing verifies.
  std::string renamed(kSpecNote);
  renamed.replace(renamed.find("example.com/foo"), 15, "example.com/fop");
  EXPECT_EQ(spec.Verify(renamed).status().code(), StatusCode::kUnauthenticated);
  // The spec's first example is signed by a key it does not publish: no signature by ours.
  const std::string quasimodo =
      "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \xC3\xA8 subito "
      "sera.\n\n\xE2\x80\x94 quasimodo.example/salvatore "
      "NnugSzTjtVAewIS+Z/iJhUPeFDkO/"
      "5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
  EXPECT_EQ(NoteVerifier::FromPublicKey("quasimodo.example/salvatore", spec.public_key())
                .Verify(quasimodo)
                .status()
                .code(),
            StatusCode::kUnauthenticated);
}

TEST(NoteTest, SigningReproducesTheReferenceImplementationExample) {
  const auto key = PeterKey();
  auto signer = NoteSigner::Create("PeterNeumann", key);
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  EXPECT_EQ(signer->VerifierKey(), kPeterVkey);
  auto note = signer->Sign(kPeterText);
  ASSERT_TRUE(note.ok()) << note.status().ToString();
  EXPECT_EQ(*note, kPeterNote);
  auto v = NoteVerifier::FromVerifierKey(kPeterVkey);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v->Verify(*note), kPeterText);
}

TEST(NoteTest, SignVerifyRoundTripWithASharedKey) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto shared = std::make_shared<const crypto::Ed25519PrivateKey>(std::move(key).value());
  auto signer = NoteSigner::Create("custody.example/log", shared);
  ASSERT_TRUE(signer.ok());
  auto v = NoteVerifier::FromVerifierKey(signer->VerifierKey());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->key_id(), signer->key_id());
  // Text with an empty line inside: the last blank line separates the signatures.
  const std::string text = "line one\n\nline three \xE2\x9C\x93\n";
  auto note = signer->Sign(text);
  ASSERT_TRUE(note.ok());
  EXPECT_EQ(*v->Verify(*note), text);
}

TEST(NoteTest, IgnoresOtherKeysButNotABadSignatureFromItsOwn) {
  auto k1 = crypto::Ed25519PrivateKey::Generate();
  auto k2 = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(k1.ok() && k2.ok());
  auto log = NoteSigner::Create("log.example", *k1);
  auto witness = NoteSigner::Create("witness.example", *k2);
  ASSERT_TRUE(log.ok() && witness.ok());
  const std::string text = "body\n";
  const std::string log_note = *log->Sign(text);
  const std::string witness_note = *witness->Sign(text);
  const std::string log_line = log_note.substr(text.size() + 1);
  const std::string witness_line = witness_note.substr(text.size() + 1);
  auto v = NoteVerifier::FromVerifierKey(log->VerifierKey());
  ASSERT_TRUE(v.ok());
  // Cosigned, either order.
  EXPECT_TRUE(v->Verify(text + "\n" + witness_line + log_line).ok());
  EXPECT_TRUE(v->Verify(text + "\n" + log_line + witness_line).ok());
  // Only the witness signed.
  EXPECT_EQ(v->Verify(witness_note).status().code(), StatusCode::kUnauthenticated);
  // A second, bad line by the log key rejects the note even though the first one verifies.
  std::string bad_line = log_line;
  bad_line[bad_line.size() - 10] = bad_line[bad_line.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(v->Verify(text + "\n" + log_line + bad_line).ok());
}

TEST(NoteTest, RejectsMalformedNotes) {
  const NoteVerifier v = SpecVerifier();
  const std::string sig_line(kSpecNote.substr(kSpecText.size() + 1));
  const std::string text(kSpecText);
  for (const std::string& note : {
           std::string(),
           text,                                                   // no signatures
           text + "\n",                                            // blank line, no signatures
           text + sig_line,                                        // no blank line
           text + "\n" + sig_line.substr(0, sig_line.size() - 1),  // no final newline
           text + "\n" + sig_line.substr(3),                       // no em dash
           text + "\n" + "-- example.com/foo AAAA\n",              //
           text + "\n" + sig_line + "\n",                          // trailing blank line
           text + "\n" + sig_line + "garbage\n",                   //
           "bell\x07\n\n" + sig_line,                              // control character
           "cr\r\n\n" + sig_line,                                  //
           "bad \xC3\x28 utf8\n\n" + sig_line,                     // invalid UTF-8
           "overlong \xC0\xAF\n\n" + sig_line,                     //
           text + "\n\xE2\x80\x94 example.com/foo\n",              // no signature
           text + "\n\xE2\x80\x94 example.com/foo AAAA\n",         // too short
           text + "\n\xE2\x80\x94 example.com/foo !!!!\n",         // not base64
       }) {
    auto r = v.Verify(note);
    EXPECT_FALSE(r.ok()) << note;
  }
  std::string many = text + "\n";
  for (int i = 0; i < 101; ++i) many += "\xE2\x80\x94 other.example AAAAAAAA\n";
  EXPECT_EQ(v.Verify(many).status().code(), StatusCode::kInvalidArgument);
  // 16 unknown signatures plus ours must be accepted (the spec's minimum).
  std::string sixteen = text + "\n";
  for (int i = 0; i < 16; ++i) sixteen += "\xE2\x80\x94 other.example AAAAAAAA\n";
  EXPECT_TRUE(v.Verify(sixteen + sig_line).ok());
}

TEST(NoteTest, RejectsBadVerifierKeys) {
  const std::string good(kSpecVkey);
  for (const std::string& vkey : {
           std::string(),
           std::string("example.com/foo"),
           std::string("example.com/foo+530d903a"),
           std::string("example.com/foo+530d903a+"),
           std::string("+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
           std::string("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
           std::string("example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
           std::string("example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
           std::string("example.com/fo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
           std::string("example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
           good + "=",
           good.substr(0, good.size() - 1),
           // Type 0x02 instead of 0x01.
           std::string("example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
       }) {
    EXPECT_FALSE(NoteVerifier::FromVerifierKey(vkey).ok()) << vkey;
  }
}

TEST(NoteTest, SignerRejectsBadNamesAndBodies) {
  auto key = crypto::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  for (const char* name : {"", "a b", "a+b", "a\tb",
                           "a\xC2\xA0"
                           "b",
                           "a\xE3\x80\x80"
                           "b",
                           "a\nb", "\xFF"}) {
    EXPECT_FALSE(NoteSigner::Create(name, *key).ok()) << name;
  }
  auto signer = NoteSigner::Create("ok.example/log", *key);
  ASSERT_TRUE(signer.ok());
  for (const char* body : {"", "no newline", "tab\there\n", "bad \xC3\x28\n"}) {
    EXPECT_EQ(signer->Sign(body).status().code(), StatusCode::kInvalidArgument) << body;
  }
}

}  // namespace
}  // namespace custody::ledger
