// The JSON shape of the shared event parts (events/event_parts.h), for this module's builders
// only: {"agent","instance","session","credential"} and {"id","issuer","verification"
// [,"asserted_by"]}.
#pragma once

#include <boost/json/object.hpp>

#include "events/event_parts.h"

namespace custody::events::internal {

inline boost::json::object ActorJson(const Actor& a) {
  return {{"agent", a.agent},
          {"instance", a.instance},
          {"session", a.session},
          {"credential", a.credential}};
}

inline boost::json::object InitiatorJson(const Initiator& i) {
  boost::json::object o{
      {"id", i.id}, {"issuer", i.issuer}, {"verification", i.verified ? "verified" : "asserted"}};
  if (!i.asserted_by.empty()) o["asserted_by"] = i.asserted_by;
  return o;
}

}  // namespace custody::events::internal
