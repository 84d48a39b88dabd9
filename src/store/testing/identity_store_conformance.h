// The conformance suite every IdentityStore backend passes (store/testing/conformance.h):
// agents (AlreadyExists, NotFound, every field kept), sessions and SessionTree's order,
// cascading revocation that returns only what it revoked now, an agent's sessions revoked at
// once, no session stored below a revoked parent or for a disabled agent, concurrent
// CreateSessionAsync calls each answered once, revoked and used jtis, signing keys, authorization
// codes redeemed exactly once (also by racing threads) and purged after a grace period, refresh
// families, consents, browser states taken once (also by racing threads) and purged by expiry.
// Cases in identity_store_conformance.cc.
#pragma once

#include "store/identity_store.h"
#include "store/testing/conformance.h"

namespace custody::store::testing {

using IdentityStoreBackend = StoreBackend<IdentityStore>;
class IdentityStoreConformance : public Conformance<IdentityStore> {};

}  // namespace custody::store::testing
