// Key wrapping (crypto/key_wrap.h): what opens, what does not, and how a KEK is read.
#include "crypto/key_wrap.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/encoding.h"

namespace custody::crypto {
namespace {

KeyEncryptionKey Kek(uint8_t fill) {
  std::array<uint8_t, KeyEncryptionKey::kSize> b;
  b.fill(fill);
  return KeyEncryptionKey::FromBytes(b);
}

constexpr std::string_view kSecret = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...\n";

TEST(KeyWrapTest, OpensWithTheSameKeyAndSlotAndHidesThePlaintext) {
  SystemRandom random;
  KeyEncryptionKey kek = Kek(7);
  std::string wrapped = kek.Wrap(kSecret, kLedgerKeySlot, random);
  EXPECT_TRUE(KeyEncryptionKey::LooksWrapped(wrapped));
  EXPECT_EQ(wrapped.find("PRIVATE KEY"), std::string::npos) << wrapped;
  auto plain = kek.Unwrap(wrapped, kLedgerKeySlot);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, kSecret);
  // A fresh nonce each time: the same key wrapped twice gives two different texts.
  EXPECT_NE(kek.Wrap(kSecret, kLedgerKeySlot, random), wrapped);
}

TEST(KeyWrapTest, AnotherKeyDoesNotOpenIt) {
  SystemRandom random;
  std::string wrapped = Kek(7).Wrap(kSecret, kLedgerKeySlot, random);
  auto r = Kek(8).Unwrap(wrapped, kLedgerKeySlot);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
}

TEST(KeyWrapTest, ABlobMovedToAnotherSlotDoesNotOpen) {
  SystemRandom random;
  KeyEncryptionKey kek = Kek(7);
  std::string for_a = kek.Wrap(kSecret, TokenSigningKeySlot("kid-a"), random);
  EXPECT_TRUE(kek.Unwrap(for_a, TokenSigningKeySlot("kid-a")).ok());
  EXPECT_FALSE(kek.Unwrap(for_a, TokenSigningKeySlot("kid-b")).ok());
  EXPECT_FALSE(kek.Unwrap(for_a, kLedgerKeySlot).ok());
  std::string ledger = kek.Wrap(kSecret, kLedgerKeySlot, random);
  EXPECT_FALSE(kek.Unwrap(ledger, TokenSigningKeySlot("kid-a")).ok());
}

TEST(KeyWrapTest, EveryAlteredByteIsRefused) {
  SystemRandom random;
  KeyEncryptionKey kek = Kek(7);
  std::string wrapped = kek.Wrap("short secret", kLedgerKeySlot, random);
  auto sealed = Base64Decode(wrapped.substr(5));
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::vector<uint8_t> bad = *sealed;
    bad[i] ^= 0x01;
    auto r = kek.Unwrap("cwk1:" + Base64Encode(bad), kLedgerKeySlot);
    EXPECT_FALSE(r.ok()) << "byte " << i;
  }
  // Truncated, not wrapped at all, not base64.
  EXPECT_EQ(kek.Unwrap(wrapped.substr(0, 20), kLedgerKeySlot).status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(kek.Unwrap(kSecret, kLedgerKeySlot).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(kek.Unwrap("cwk1:!!!", kLedgerKeySlot).status().code(), StatusCode::kDataLoss);
}

TEST(KeyWrapTest, ParsesHexAndBase64OfExactly32Bytes) {
  SystemRandom random;
  std::array<uint8_t, 32> bytes;
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  auto hex = KeyEncryptionKey::Parse(HexEncode(bytes) + "\n");
  auto b64 = KeyEncryptionKey::Parse("  " + Base64Encode(bytes) + "\n");
  ASSERT_TRUE(hex.ok()) << hex.status().ToString();
  ASSERT_TRUE(b64.ok()) << b64.status().ToString();
  std::string wrapped = hex->Wrap(kSecret, kLedgerKeySlot, random);
  EXPECT_TRUE(b64->Unwrap(wrapped, kLedgerKeySlot).ok());
  EXPECT_TRUE(KeyEncryptionKey::FromBytes(bytes).Unwrap(wrapped, kLedgerKeySlot).ok());

  const std::string short_key = Base64Encode(std::span(bytes.data(), 31));
  for (const std::string& bad : {std::string(""), HexEncode(bytes).substr(2), short_key,
                                 std::string(64, 'z'), std::string("not a key at all")}) {
    auto r = KeyEncryptionKey::Parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    if (!bad.empty()) {
      EXPECT_EQ(r.status().message().find(bad), std::string::npos);
    }
  }
}

class KekFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody-kek-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(mode_t mode, const std::string& text) {
    std::string path = (dir_ / "kek").string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(KekFileTest, Mode0600And0400AreReadAndAnythingWiderIsRefusedNamingTheMode) {
  const std::string text = std::string(64, 'a') + "\n";
  EXPECT_TRUE(KeyEncryptionKey::FromFile(Write(0600, text)).ok());
  EXPECT_TRUE(KeyEncryptionKey::FromFile(Write(0400, text)).ok());
  for (mode_t wide : {0644, 0640, 0604, 0660, 0700}) {
    auto r = KeyEncryptionKey::FromFile(Write(wide, text));
    ASSERT_FALSE(r.ok()) << std::oct << wide;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(wide));
    EXPECT_NE(r.status().message().find(std::string("mode ") + mode), std::string::npos)
        << r.status().message();
    EXPECT_EQ(r.status().message().find(dir_.string()), std::string::npos)
        << "no absolute path: " << r.status().message();
  }
  auto missing = KeyEncryptionKey::FromFile((dir_ / "none").string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto garbage = KeyEncryptionKey::FromFile(Write(0600, "hunter2\n"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace custody::crypto
