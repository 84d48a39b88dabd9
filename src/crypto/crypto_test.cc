#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/encoding.h"
#include "crypto/ed25519.h"
#include "crypto/key_file.h"
#include "crypto/sha256.h"

namespace custody::crypto {
namespace {

TEST(Sha256Test, KnownAnswers) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256Hasher h;
  h.Update("a").Update("b").Update(static_cast<uint8_t>('c'));
  EXPECT_EQ(h.Finish(), Sha256("abc"));
  // The hasher resets after Finish.
  EXPECT_EQ(h.Update("abc").Finish(), Sha256("abc"));
}

// RFC 8032 §7.1, TEST 1 and TEST 2.
TEST(Ed25519Test, Rfc8032Vectors) {
  auto seed = HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  ASSERT_TRUE(seed.ok());
  auto key = Ed25519PrivateKey::FromSeed(*seed);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(HexEncode(key->public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = key->Sign(std::string_view());
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(HexEncode(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
            "701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(Ed25519Verify(key->public_key(), std::string_view(), *sig));

  auto seed2 = HexDecode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  auto key2 = Ed25519PrivateKey::FromSeed(*seed2);
  ASSERT_TRUE(key2.ok());
  auto msg = HexDecode("72");
  auto sig2 = key2->Sign(*msg);
  ASSERT_TRUE(sig2.ok());
  EXPECT_EQ(HexEncode(*sig2),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
            "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
}

// A key read back from its PKCS#8 file signs the same bytes (the fast signing key is derived
// from whatever form the key was loaded in), and a long message signs and verifies.
TEST(Ed25519Test, AKeyReadFromPemSignsTheSameBytes) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto pem = key->ToPkcs8Pem();
  ASSERT_TRUE(pem.ok());
  auto loaded = Ed25519PrivateKey::FromPkcs8Pem(*pem);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->public_key(), key->public_key());
  std::string message(100000, 'x');
  auto a = key->Sign(message);
  auto b = loaded->Sign(message);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_TRUE(Ed25519Verify(key->public_key(), message, *a));
  message[99999] = 'y';
  EXPECT_FALSE(Ed25519Verify(key->public_key(), message, *a));
}

TEST(Ed25519Test, RejectsTamperedMessageAndSignature) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto sig = key->Sign("hello");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Ed25519Verify(key->public_key(), "hello", *sig));
  EXPECT_FALSE(Ed25519Verify(key->public_key(), "hellp", *sig));
  Ed25519Signature bad = *sig;
  bad[10] ^= 0x01;
  EXPECT_FALSE(Ed25519Verify(key->public_key(), "hello", bad));
  EXPECT_FALSE(Ed25519Verify(key->public_key(), "hello", std::span(sig->data(), 63)));
  auto other = Ed25519PrivateKey::Generate();
  EXPECT_FALSE(Ed25519Verify(other->public_key(), "hello", *sig));
}

TEST(KeyFileTest, CreatesWithMode0600AndReloadsSameKey) {
  auto dir =
      std::filesystem::temp_directory_path() / ("custody-key-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "ledger.key").string();
  std::filesystem::remove(path);

  auto created = LoadOrCreateEd25519Key(path);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  auto loaded = LoadOrCreateEd25519Key(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->public_key(), created->public_key());

  // A key that others can read is refused rather than used.
  ::chmod(path.c_str(), 0644);
  auto refused = LoadOrCreateEd25519Key(path);
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);

  // Creating over an existing file is refused.
  EXPECT_EQ(WriteSecretFile(path, "x").code(), StatusCode::kAlreadyExists);

  // Garbage in a key file is a clear error.
  std::string junk = (dir / "junk.key").string();
  std::filesystem::remove(junk);
  ASSERT_TRUE(WriteSecretFile(junk, "not a key").ok());
  EXPECT_EQ(LoadOrCreateEd25519Key(junk).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(KeyFileTest, CreatePrivateFileIfMissingIs0600AndLeavesAnExistingFileAlone) {
  auto dir = std::filesystem::temp_directory_path() /
             ("custody-private-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  mode_t saved = ::umask(022);
  std::string path = (dir / "a.db").string();
  ASSERT_TRUE(CreatePrivateFileIfMissing(path).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_size, 0);
  // An existing file keeps its contents and mode.
  std::string other = (dir / "b.db").string();
  ASSERT_TRUE(WriteSecretFile(other, "data").ok());
  ASSERT_TRUE(CreatePrivateFileIfMissing(other).ok());
  auto text = ReadFileToString(other);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "data");
  // A directory that does not exist is a clear error naming the path.
  std::string missing = (dir / "no" / "c.db").string();
  Status st2 = CreatePrivateFileIfMissing(missing);
  EXPECT_EQ(st2.code(), StatusCode::kUnavailable);
  EXPECT_NE(st2.message().find(missing), std::string::npos);
  ::umask(saved);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace custody::crypto
