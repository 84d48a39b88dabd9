#include "cli/line_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "cli/line_writer.h"

namespace custody::cli {
namespace {

// A file holding `content`, open for reading; removed when the test ends.
class InputFile {
 public:
  explicit InputFile(const std::string& content) {
    char path[] = "/tmp/custody-line-reader-XXXXXX";
    fd_ = ::mkstemp(path);
    EXPECT_GE(fd_, 0);
    ::unlink(path);
    EXPECT_EQ(::write(fd_, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::lseek(fd_, 0, SEEK_SET);
  }
  ~InputFile() { ::close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

std::vector<std::string> ReadAll(const std::string& content, size_t buffer_size,
                                 int* reads = nullptr) {
  InputFile in(content);
  LineReader reader(in.fd(), buffer_size);
  if (reads) reader.SetBeforeRead([reads] { ++*reads; });
  std::vector<std::string> lines;
  std::string_view line;
  while (true) {
    Result<bool> more = reader.Next(&line);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    lines.emplace_back(line);
  }
  return lines;
}

using Lines = std::vector<std::string>;

TEST(LineReaderTest, SplitsLinesWhereverTheReadsEnd) {
  const std::string input = "{\"a\":1}\n\nsecond line\r\n  \nlast\n";
  const Lines want = {"{\"a\":1}", "", "second line\r", "  ", "last"};
  // Every buffer size from one byte up puts the read boundaries somewhere else.
  for (size_t size = 1; size <= input.size() + 1; ++size) {
    EXPECT_EQ(ReadAll(input, size), want) << "buffer of " << size;
  }
}

TEST(LineReaderTest, TheLastLineNeedsNoNewline) {
  for (size_t size : {1u, 3u, 4096u}) {
    EXPECT_EQ(ReadAll("one\ntwo", size), (Lines{"one", "two"})) << size;
    EXPECT_EQ(ReadAll("only", size), (Lines{"only"})) << size;
  }
}

TEST(LineReaderTest, EmptyInputHasNoLinesAndANewlineEndsOne) {
  EXPECT_EQ(ReadAll("", 16), Lines{});
  EXPECT_EQ(ReadAll("\n", 16), Lines{""});
  EXPECT_EQ(ReadAll("a\n\n", 16), (Lines{"a", ""}));
}

TEST(LineReaderTest, ALineLongerThanTheBufferComesWhole) {
  const std::string big(3 * 1024 * 1024 + 17, 'x');
  const std::string input = "short\n" + big + "\nafter\n" + big;
  for (size_t size : {7u, 4096u, 1u << 20}) {
    Lines got = ReadAll(input, size);
    ASSERT_EQ(got.size(), 4u) << size;
    EXPECT_EQ(got[0], "short");
    EXPECT_EQ(got[1], big);
    EXPECT_EQ(got[2], "after");
    EXPECT_EQ(got[3], big);
  }
}

TEST(LineReaderTest, ReadsOnlyWhenTheBufferedLinesAreUsedUp) {
  std::string input;
  for (int i = 0; i < 1000; ++i) input += "line " + std::to_string(i) + "\n";
  int reads = 0;
  Lines got = ReadAll(input, 1 << 20, &reads);
  EXPECT_EQ(got.size(), 1000u);
  EXPECT_EQ(got[999], "line 999");
  EXPECT_EQ(reads, 2);  // one read for all the input, one that finds its end
}

TEST(LineReaderTest, AReadErrorIsReported) {
  LineReader reader(-1);
  std::string_view line;
  Result<bool> r = reader.Next(&line);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot read standard input"), std::string::npos);
}

// What is in the pipe now, without waiting.
std::string Available(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  return out;
}

class LineWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe(fds_), 0);
    ASSERT_EQ(::fcntl(fds_[0], F_SETFL, O_NONBLOCK), 0);
  }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fds_[2];
};

TEST_F(LineWriterTest, ToAPipeLinesWaitForFlush) {
  LineWriter out(fds_[1], /*interactive=*/false);
  ASSERT_TRUE(out.Write("{\"index\":0}").ok());
  ASSERT_TRUE(out.Write("{\"index\":1}").ok());
  EXPECT_EQ(Available(fds_[0]), "");
  ASSERT_TRUE(out.Flush().ok());
  EXPECT_EQ(Available(fds_[0]), "{\"index\":0}\n{\"index\":1}\n");
}

TEST_F(LineWriterTest, ToATerminalEachLineGoesAtOnce) {
  LineWriter out(fds_[1], /*interactive=*/true);
  ASSERT_TRUE(out.Write("first").ok());
  EXPECT_EQ(Available(fds_[0]), "first\n");
}

TEST_F(LineWriterTest, AFullBufferIsWrittenWithoutFlush) {
  LineWriter out(fds_[1], /*interactive=*/false, /*flush_at=*/10000);
  const std::string line(999, 'r');
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(out.Write(line).ok());
  EXPECT_EQ(Available(fds_[0]), "");  // 9,000 bytes: still buffered
  ASSERT_TRUE(out.Write(line).ok());
  EXPECT_EQ(Available(fds_[0]).size(), 10000u);
}

TEST_F(LineWriterTest, WhatIsLeftIsWrittenAtDestruction) {
  {
    LineWriter out(fds_[1], /*interactive=*/false);
    ASSERT_TRUE(out.Write("last").ok());
  }
  EXPECT_EQ(Available(fds_[0]), "last\n");
}

TEST(LineWriterErrorTest, AWriteErrorIsReported) {
  LineWriter out(-1, /*interactive=*/false);
  ASSERT_TRUE(out.Write("x").ok());
  Status st = out.Flush();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("cannot write standard output"), std::string::npos);
}

}  // namespace
}  // namespace custody::cli
