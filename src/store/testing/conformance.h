// The frame of every store conformance suite (SPIRE's sqltest pattern): a value-parameterised
// GoogleTest fixture whose parameter is a backend, a name and a factory that opens a fresh,
// empty store in a temporary directory. A suite is `class FooStoreConformance : public
// Conformance<FooStore> {}` plus TEST_Ps in custody_store_testkit; each backend instantiates
// it with INSTANTIATE_TEST_SUITE_P(..., ::testing::Values(StoreBackend<FooStore>{...}),
// BackendName<FooStore>), and a new backend passes the suites unchanged.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "common/status.h"

namespace custody::store::testing {

template <class Store>
struct StoreBackend {
  std::string name;
  // A fresh, empty store; `dir` exists and is removed after the test.
  std::function<Result<std::unique_ptr<Store>>(const std::filesystem::path& dir)> open;
};

// GoogleTest prints a test's parameter (CTest shows it): the backend's name, not its bytes.
template <class Store>
void PrintTo(const StoreBackend<Store>& backend, std::ostream* os) {
  *os << backend.name;
}

template <class Store>
class Conformance : public ::testing::TestWithParam<StoreBackend<Store>> {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "custody_conformance_" + std::to_string(::getpid()) + "_" +
                       test->test_suite_name() + "_" + test->name();
    for (char& c : name) c = c == '/' ? '_' : c;  // Backends/FooConformance, Case/Sqlite
    dir_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = this->GetParam().open(dir_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

// For INSTANTIATE_TEST_SUITE_P's name generator.
template <class Store>
std::string BackendName(const ::testing::TestParamInfo<StoreBackend<Store>>& info) {
  return info.param.name;
}

}  // namespace custody::store::testing
