// The parts several kinds of event share: who acted (Actor) and who started the work
// (Initiator). Plain types, so that any module can fill them; their JSON shape is written in one
// place (events/internal/parts_json.h).
#pragma once

#include <string>

namespace custody::events {

// Who acted: the agent, its instance (SPIFFE ID), its session and the credential (jti).
struct Actor {
  std::string agent, instance, session, credential;
};
// Who started the work, and how Custody knows it.
struct Initiator {
  std::string id, issuer;
  bool verified = false;
  std::string asserted_by;  // the client that asserted it, when asserted
};

}  // namespace custody::events
