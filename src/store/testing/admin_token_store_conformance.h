// The conformance suite every AdminTokenStore backend passes (store/testing/conformance.h):
// insert and AlreadyExists, lookup by id, the list oldest first, revocation (NotFound, the
// first time kept), the readiness check. Cases in admin_token_store_conformance.cc.
#pragma once

#include "store/admin_token_store.h"
#include "store/testing/conformance.h"

namespace custody::store::testing {

using AdminTokenStoreBackend = StoreBackend<AdminTokenStore>;
class AdminTokenStoreConformance : public Conformance<AdminTokenStore> {};

}  // namespace custody::store::testing
