#include "investigate/evidence.h"

#include <boost/json.hpp>
#include <set>

#include "common/encoding.h"
#include "identity/token_service.h"
#include "ledger/checkpoint.h"
#include "ledger/ledger.h"
#include "ledger/note.h"
#include "ledger/proof.h"
#include "store/attribution_store.h"

namespace custody::investigate {

namespace json = boost::json;

Result<std::string> BuildEvidence(identity::TokenService& tokens, ledger::Ledger& ledger,
                                  store::AttributionStore& store, const std::string& sid) {
  ASSIGN_OR_RETURN(std::vector<identity::Session> tree, tokens.SessionTree(sid));
  // The checkpoint first: every event found afterwards at an index below its size is covered.
  ASSIGN_OR_RETURN(store::StoredCheckpoint cp, ledger.LatestCheckpoint());

  std::set<uint64_t> indexes;
  std::set<std::string> agents;
  std::vector<std::string> sids;
  for (const auto& s : tree) {
    sids.push_back(s.sid);
    agents.insert(s.agent);
    ASSIGN_OR_RETURN(auto found,
                     ledger.store().FindLeaves(store::LedgerStore::Column::kSession, s.sid));
    indexes.insert(found.begin(), found.end());
    ASSIGN_OR_RETURN(auto contained, store.ContainmentsOf(s.sid));
    for (const auto& c : contained)
      if (c.ledger_index >= 0) indexes.insert(static_cast<uint64_t>(c.ledger_index));
  }
  for (const auto& a : agents) {
    ASSIGN_OR_RETURN(auto contained, store.ContainmentsOf(a));
    for (const auto& c : contained)
      if (c.ledger_index >= 0) indexes.insert(static_cast<uint64_t>(c.ledger_index));
  }
  ASSIGN_OR_RETURN(auto rows, store.ActionsOfSessions(sids));
  for (const auto& r : rows) {
    if (r.decision_index >= 0) indexes.insert(static_cast<uint64_t>(r.decision_index));
    if (r.outcome_index > 0) indexes.insert(static_cast<uint64_t>(r.outcome_index));
  }

  json::array events;
  int64_t omitted = 0;
  for (uint64_t idx : indexes) {
    if (idx >= cp.size) {
      omitted++;
      continue;
    }
    ASSIGN_OR_RETURN(store::StoredLeaf leaf, ledger.GetEntry(idx));
    ASSIGN_OR_RETURN(std::vector<ledger::Hash> proof, ledger.InclusionProof(idx, cp.size));
    json::array p;
    for (const auto& h : proof) p.emplace_back(Base64Encode(h));
    events.push_back(json::object{{"index", idx},
                                  {"kind", leaf.columns.kind},
                                  {"event_id", leaf.columns.event_id},
                                  {"leaf_hash", HexEncode(leaf.leaf_hash)},
                                  {"jcs", leaf.data},
                                  {"proof", std::move(p)}});
  }
  json::array sid_arr;
  for (const auto& s : sids) sid_arr.emplace_back(s);
  json::object out{{"format", kEvidenceFormat},
                   {"origin", ledger.origin()},
                   {"verifier_key", ledger.VerifierKey()},
                   {"session", sid},
                   {"sessions", std::move(sid_arr)},
                   {"checkpoint", cp.note},
                   {"checkpoint_size", cp.size},
                   {"events", std::move(events)},
                   {"omitted_after_checkpoint", omitted}};
  return json::serialize(out);
}

}  // namespace custody::investigate
