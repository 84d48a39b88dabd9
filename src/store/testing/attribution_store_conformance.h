// The conformance suite every AttributionStore backend passes (SPIRE's sqltest pattern): the
// same assertions, run against each backend by one INSTANTIATE_TEST_SUITE_P per backend with a
// factory that opens a fresh, empty store in a temporary directory (store/testing/conformance.h).
// The suite's cases live in attribution_store_conformance.cc (custody_store_testkit); a new
// backend links the testkit and instantiates the suite, unchanged.
#pragma once

#include "store/attribution_store.h"
#include "store/testing/conformance.h"

namespace custody::store::testing {

using AttributionStoreBackend = StoreBackend<AttributionStore>;
class AttributionStoreConformance : public Conformance<AttributionStore> {};

}  // namespace custody::store::testing
