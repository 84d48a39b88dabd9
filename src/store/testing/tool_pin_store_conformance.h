// The conformance suite every ToolPinStore backend passes (store/testing/conformance.h): the
// first hash is pinned, a change is reported once and stays refused until exactly the hash
// last seen is approved, reverting is a change again, List's order and fields, tools,
// resources and prompts kept apart. Cases in tool_pin_store_conformance.cc.
#pragma once

#include "store/testing/conformance.h"
#include "store/tool_pin_store.h"

namespace custody::store::testing {

using ToolPinStoreBackend = StoreBackend<ToolPinStore>;
class ToolPinStoreConformance : public Conformance<ToolPinStore> {};

}  // namespace custody::store::testing
