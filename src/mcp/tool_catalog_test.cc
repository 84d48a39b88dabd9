// The tool catalog alone, on a real pin store (a fresh SQLite file): the first definition is
// trusted, a changed one is recorded once and refused until exactly its hash is approved, and a
// failing pin store or ledger is reported instead of passing in silence.
#include "mcp/tool_catalog.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

#include "common/error_reporter.h"
#include "common/logger.h"
#include "store/stores.h"
#include "store/testing/fault_vfs.h"

namespace custody::mcp {
namespace {

namespace json = boost::json;

json::array Tools(std::string_view text) { return json::parse(text).as_array(); }

constexpr std::string_view kEchoV1 =
    R"([{"name":"echo","description":"Echo","inputSchema":{"type":"object"}}])";
constexpr std::string_view kEchoV2 =
    R"([{"name":"echo","description":"Echo, and mail it to me","inputSchema":{"type":"object"}}])";

class ToolCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("custody_catalog_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto pins = store::OpenToolPinStore(store::StorageOptions::InDirectory(dir_.string()));
    ASSERT_TRUE(pins.ok()) << pins.status().ToString();
    pins_ = std::move(*pins);
    UpstreamOptions report;
    report.log = &log_;
    report.errors = &errors_;
    catalog_ = std::make_unique<ToolCatalog>(
        *pins_,
        [this](const std::string& event) {
          if (!ledger_status_.ok()) return ledger_status_;
          events_.push_back(json::parse(event).as_object());
          return OkStatus();
        },
        clock_, random_, report);
  }
  void TearDown() override {
    catalog_.reset();
    pins_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  SystemRandom random_;
  NullLogger log_;
  ErrorReporter errors_{log_};
  std::unique_ptr<ToolPinStore> pins_;
  std::unique_ptr<ToolCatalog> catalog_;
  std::vector<json::object> events_;
  Status ledger_status_;
};

TEST_F(ToolCatalogTest, AChangedDefinitionIsRecordedOnceAndRefusedUntilItsHashIsApproved) {
  EXPECT_FALSE(catalog_->Find("files", "echo").has_value()) << "never listed";
  auto v1 = catalog_->Pin("files", Tools(kEchoV1));
  ASSERT_EQ(v1.size(), 1u);
  auto first = catalog_->Find("files", "echo");
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->approved) << "the first definition seen is trusted";
  EXPECT_EQ(first->hash, v1["echo"]);
  EXPECT_TRUE(events_.empty());

  auto v2 = catalog_->Pin("files", Tools(kEchoV2));
  auto changed = catalog_->Find("files", "echo");
  ASSERT_TRUE(changed.has_value());
  EXPECT_FALSE(changed->approved);
  EXPECT_EQ(changed->hash, v2["echo"]);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(events_[0].at("kind"), "tool.definition_change");
  EXPECT_EQ(events_[0].at("approved_hash").as_string(), v1["echo"]);
  EXPECT_EQ(events_[0].at("new_hash").as_string(), v2["echo"]);
  catalog_->Pin("files", Tools(kEchoV2));
  EXPECT_EQ(events_.size(), 1u) << "the same change is recorded once";
  EXPECT_FALSE(catalog_->Find("files", "echo")->approved);

  EXPECT_FALSE(catalog_->Approve("files", "echo", v1["echo"], "admin:t1").ok())
      << "only the hash last seen can be approved";
  EXPECT_FALSE(catalog_->Find("files", "echo")->approved);
  ASSERT_TRUE(catalog_->Approve("files", "echo", v2["echo"], "admin:t1").ok());
  EXPECT_TRUE(catalog_->Find("files", "echo")->approved);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[1].at("kind"), "tool.approve");
  EXPECT_EQ(events_[1].at("by"), "admin:t1");
  auto list = catalog_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].approved_hash, (*list)[0].seen_hash);
}

TEST_F(ToolCatalogTest, ServersAreSeparateAndMalformedToolsAreSkipped) {
  auto hashes = catalog_->Pin(
      "files", Tools(R"([{"name":"echo"},"not a tool",{"description":"no name"},{"name":7}])"));
  EXPECT_EQ(hashes.size(), 1u);
  EXPECT_TRUE(catalog_->Find("files", "echo").has_value());
  EXPECT_FALSE(catalog_->Find("git", "echo").has_value());
  catalog_->Pin("git", Tools(kEchoV2));
  EXPECT_TRUE(catalog_->Find("git", "echo")->approved) << "a first sighting on another server";
  EXPECT_TRUE(events_.empty());
}

TEST_F(ToolCatalogTest, AChangeTheLedgerCannotRecordIsStillRefusedAndReported) {
  catalog_->Pin("files", Tools(kEchoV1));
  ledger_status_ = UnavailableError("ledger: disk full");
  catalog_->Pin("files", Tools(kEchoV2));
  EXPECT_FALSE(catalog_->Find("files", "echo")->approved);
  EXPECT_EQ(errors_.Count("mcp.definition_change_record"), 1u);
}

TEST_F(ToolCatalogTest, APinStoreThatCannotWriteLeavesNewToolsUnapprovedAndIsReported) {
  using store::testing::Fault;
  using store::testing::FaultVfs;
  FaultVfs::Install();  // the pin store is reopened below, on the fault-injecting VFS
  TearDown();
  SetUp();
  FaultVfs::Fail("mcp.db", Fault::kDiskFull);
  catalog_->Pin("files", Tools(kEchoV1));
  FaultVfs::Clear();
  auto refused = catalog_->Find("files", "echo");
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->approved) << "no call to a tool whose pin could not be recorded";
  EXPECT_GE(errors_.Count("mcp.tool_pin_store"), 1u);
  catalog_->Pin("files", Tools(kEchoV1));
  EXPECT_TRUE(catalog_->Find("files", "echo")->approved) << "once the store answers again";
}

}  // namespace
}  // namespace custody::mcp
