#include "common/uri.h"

#include <gtest/gtest.h>

namespace custody {
namespace {

std::string Norm(std::string_view s) {
  auto r = NormalizeUri(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? *r : "";
}

TEST(NormalizeUri, SpellingsOfOneUriMeetInOneForm) {
  const std::string canonical = "demo://resource/static/document/features.md";
  EXPECT_EQ(Norm(canonical), canonical);
  EXPECT_EQ(Norm("DEMO://resource/static/document/features.md"), canonical);
  EXPECT_EQ(Norm("demo://RESOURCE/static/document/features.md"), canonical);
  EXPECT_EQ(Norm("demo://resource/static/document/./features.md"), canonical);
  EXPECT_EQ(Norm("demo://resource/static/document/x/../features.md"), canonical);
  EXPECT_EQ(Norm("demo://resource/static/%64ocument/features.md"), canonical);
  EXPECT_EQ(Norm("file:///etc/x/../passwd"), "file:///etc/passwd");
  // Boost 1.81 decodes every character the path may hold as it is, "/" included: the form the
  // policy sees is the one the server is sent, whatever it makes of it. Paths keep their case.
  EXPECT_EQ(Norm("file:///a%2fb"), "file:///a/b");
  EXPECT_EQ(Norm("file:///a%20b"), "file:///a%20b");
  EXPECT_EQ(Norm("file:///Docs/A.md"), "file:///Docs/A.md");
  EXPECT_EQ(Norm("test://template/123/data?x=1#f"), "test://template/123/data?x=1#f");
}

TEST(NormalizeUri, RefusesWhatIsNotAnAbsoluteUri) {
  for (std::string_view bad :
       {"", " demo://resource/a", "demo://resource/a ", "demo://resource/a\n", "relative/path",
        "/abs/path", "demo://resource/a b", "demo://reso urce/", "http://[::1/"}) {
    auto r = NormalizeUri(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace custody
