// The conformance suite every CredentialStore backend passes (store/testing/conformance.h): a
// lease reads back field for field, a role is leased once, the states move only active ->
// revoking -> revoked (each step once), renewal only while active, the listings' filters and
// order. Cases in credential_store_conformance.cc.
#pragma once

#include "store/credential_store.h"
#include "store/testing/conformance.h"

namespace custody::store::testing {

using CredentialStoreBackend = StoreBackend<CredentialStore>;
class CredentialStoreConformance : public Conformance<CredentialStore> {};

}  // namespace custody::store::testing
