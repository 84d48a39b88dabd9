#include "crypto/key_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace custody::crypto {

Status WriteSecretFile(const std::string& path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExistsError("file already exists: " + path);
    return UnavailableError("cannot create " + path + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = std::strerror(errno);
      ::close(fd);
      return UnavailableError("cannot write " + path + ": " + err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string err = std::strerror(errno);
    ::close(fd);
    return UnavailableError("cannot fsync " + path + ": " + err);
  }
  ::close(fd);
  return OkStatus();
}

Status CreatePrivateFileIfMissing(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return OkStatus();
  }
  if (errno == EEXIST) return OkStatus();
  return UnavailableError("cannot create " + path + ": " + std::strerror(errno));
}

Result<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return UnavailableError("cannot read " + path);
  return ss.str();
}

Result<Ed25519PrivateKey> LoadOrCreateEd25519Key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if ((st.st_mode & 077) != 0) {
      return PermissionDeniedError("key file " + path +
                                   " is readable by group or others; chmod 600 it");
    }
    ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path));
    auto key = Ed25519PrivateKey::FromPkcs8Pem(pem);
    if (!key.ok()) return key.status().WithContext("key file " + path);
    return key;
  }
  ASSIGN_OR_RETURN(Ed25519PrivateKey key, Ed25519PrivateKey::Generate());
  ASSIGN_OR_RETURN(std::string pem, key.ToPkcs8Pem());
  RETURN_IF_ERROR(WriteSecretFile(path, pem));
  return key;
}

Result<std::string> ReadSecretFile(const std::string& path, std::string_view what,
                                   size_t max_bytes) {
  const std::string name =
      std::string(what) + " " + std::filesystem::path(path).filename().string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFoundError("cannot open " + name + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError(name + " is not a regular file");
  }
  if ((st.st_mode & 0177) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return FailedPreconditionError(name + " has mode " + mode +
                                   ": it must be 0600 or stricter (chmod 600 it)");
  }
  std::string text;
  char buf[4096];
  Status failed;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failed = UnavailableError("cannot read " + name);
      break;
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      failed = InvalidArgumentError(name + " is too large (at most " + std::to_string(max_bytes) +
                                    " bytes)");
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  OPENSSL_cleanse(buf, sizeof buf);
  if (!failed.ok()) {
    OPENSSL_cleanse(text.data(), text.size());
    return failed;
  }
  return text;
}

}  // namespace custody::crypto
