// The conformance suite every AttributionStore backend passes (SPIRE's sqltest pattern): the
// same assertions, run against each backend by one INSTANTIATE_TEST_SUITE_P per backend with a
// factory that opens a fresh, empty store in a temporary directory. The suite's cases live in
// attribution_store_conformance.cc (custody_store_testkit); a new backend links the testkit
// and instantiates the suite, unchanged.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "store/attribution_store.h"

namespace custody::store::testing {

struct AttributionStoreBackend {
  std::string name;
  // A fresh, empty store; `dir` exists and is removed after the test.
  std::function<Result<std::unique_ptr<AttributionStore>>(const std::filesystem::path& dir)> open;
};

class AttributionStoreConformance : public ::testing::TestWithParam<AttributionStoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;
  std::filesystem::path dir_;
  std::unique_ptr<AttributionStore> store_;
};

// For INSTANTIATE_TEST_SUITE_P's name generator.
std::string BackendName(const ::testing::TestParamInfo<AttributionStoreBackend>& info);

}  // namespace custody::store::testing
