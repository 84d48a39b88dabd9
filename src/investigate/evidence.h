// Evidence bundles: every ledger event of a session tree, each with its exact RFC 8785 bytes and
// an inclusion proof against ONE signed checkpoint, plus the log's verifier key, in one JSON
// document that anyone can check offline.
//
//   {"format":"custody-evidence/v1", "origin":…, "verifier_key":…, "session":<sid>,
//    "sessions":[sids of the tree], "checkpoint":<signed note text>, "checkpoint_size":N,
//    "events":[{"index":i, "kind":…, "event_id":…, "leaf_hash":<hex>, "jcs":<the leaf bytes, as
//               a JSON string>, "proof":[<base64 hash>, …]}, …],   (ascending index)
//    "omitted_after_checkpoint":n}
//
// Which events: the decisions and outcomes of the tree's actions (from the attribution index),
// its containments, its agents' containments, and every leaf whose ledger index column `session`
// names one of its sessions (session.start, delegation, decisions, outcomes, containments —
// identity events only if the appender filled that column).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/ledger_store.h"

namespace custody::ledger {
class Ledger;
}
namespace custody::identity {
class TokenService;
}
namespace custody::store {
class AttributionStore;
}

namespace custody::investigate {

inline constexpr std::string_view kEvidenceFormat = "custody-evidence/v1";

// Reads only; the collaborators must outlive the call. NotFound for an unknown session,
// FailedPrecondition while the ledger is empty.
Result<std::string> BuildEvidence(identity::TokenService& tokens, ledger::Ledger& ledger,
                                  store::AttributionStore& store, const std::string& sid);

struct EvidenceReport {
  bool ok = false;
  std::string origin;
  std::string session;
  uint64_t checkpoint_size = 0;
  size_t events = 0;
  size_t verified = 0;
  bool key_pinned = false;
  // One line per problem, naming the event ("event 3 (index 17, action.decision <id>): …").
  std::vector<std::string> problems;
};

// Checks a bundle offline: the checkpoint's signature (under `pinned_key` when given, which must
// also be the key the bundle names; otherwise under the bundle's own key, which only shows the
// bundle is self-consistent), each event's bytes are canonical and hash to its leaf hash, each
// proof leads to the checkpoint's root, no index appears twice, every index is below the
// checkpoint's size. InvalidArgument only when the document is not a bundle at all.
Result<EvidenceReport> VerifyEvidence(std::string_view bundle,
                                      std::optional<std::string> pinned_key = std::nullopt);

// The report as JSON ({"ok":…, "problems":[…], …}).
std::string EvidenceReportJson(const EvidenceReport& report);

}  // namespace custody::investigate
