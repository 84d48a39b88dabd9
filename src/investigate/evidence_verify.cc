// Offline verification of evidence bundles (evidence.h). Apart from BuildEvidence (evidence.cc)

#include "common/json_array.h"
#include "common/json_parse.h"
// because checking a bundle needs only the ledger's formats, not the stores that made it: the
// evidence fuzzer links this file without the attribution stack.
#include <boost/json.hpp>
#include <set>

#include "common/encoding.h"
#include "common/jcs.h"
#include "investigate/evidence.h"
#include "ledger/checkpoint.h"
#include "ledger/merkle.h"
#include "ledger/note.h"
#include "ledger/proof.h"

namespace custody::investigate {

namespace json = boost::json;

namespace {

constexpr size_t kMaxEvents = 1'000'000;

}  // namespace

Result<EvidenceReport> VerifyEvidence(std::string_view bundle,
                                      std::optional<std::string> pinned_key) {
  boost::system::error_code ec;
  json::value v = ParseJson(bundle, ec);
  if (ec || !v.is_object()) return InvalidArgumentError("the bundle is not a JSON object");
  const json::object& b = v.get_object();
  if (StringField(b, "format") != kEvidenceFormat)
    return InvalidArgumentError("not a " + std::string(kEvidenceFormat) + " bundle");
  auto ev_it = b.find("events");
  if (ev_it == b.end() || !ev_it->value().is_array())
    return InvalidArgumentError("the bundle has no events array");
  const json::array& events = ev_it->value().get_array();
  if (events.size() > kMaxEvents) return InvalidArgumentError("too many events");

  EvidenceReport r;
  r.origin = StringField(b, "origin");
  r.session = StringField(b, "session");
  r.events = events.size();
  r.key_pinned = pinned_key.has_value();
  const std::string bundle_key = StringField(b, "verifier_key");
  if (pinned_key && *pinned_key != bundle_key)
    r.problems.push_back("the bundle names another verifier key than the pinned one");
  std::string key = pinned_key ? *pinned_key : bundle_key;
  auto verifier = ledger::NoteVerifier::FromVerifierKey(key);
  std::optional<ledger::Checkpoint> cp;
  if (!verifier.ok()) {
    r.problems.push_back("verifier key: " + verifier.status().message());
  } else {
    auto opened = ledger::OpenCheckpoint(
        *verifier, StringField(b, "checkpoint"),
        r.origin.empty() ? std::nullopt : std::optional<std::string_view>(r.origin));
    if (!opened.ok()) {
      r.problems.push_back(std::string("checkpoint: ") +
                           (pinned_key ? "does not verify under the pinned key: "
                                       : "does not verify under the bundle's key: ") +
                           opened.status().message());
    } else {
      cp = *opened;
      r.checkpoint_size = cp->size;
      auto size_it = b.find("checkpoint_size");
      if (size_it != b.end() &&
          (!size_it->value().is_number() ||
           size_it->value().to_number<double>() != static_cast<double>(cp->size)))
        r.problems.push_back("checkpoint_size does not match the signed checkpoint");
    }
  }

  std::set<uint64_t> seen;
  for (size_t i = 0; i < events.size(); ++i) {
    std::string name = "event " + std::to_string(i);
    if (!events[i].is_object()) {
      r.problems.push_back(name + ": not an object");
      continue;
    }
    const json::object& e = events[i].get_object();
    auto idx_it = e.find("index");
    if (idx_it == e.end() || !(idx_it->value().is_uint64() || idx_it->value().is_int64()) ||
        (idx_it->value().is_int64() && idx_it->value().get_int64() < 0)) {
      r.problems.push_back(name + ": missing or bad index");
      continue;
    }
    uint64_t idx = idx_it->value().is_uint64() ? idx_it->value().get_uint64()
                                               : static_cast<uint64_t>(idx_it->value().get_int64());
    name += " (index " + std::to_string(idx);
    if (!StringField(e, "kind").empty()) name += ", " + StringField(e, "kind");
    if (!StringField(e, "event_id").empty()) name += " " + StringField(e, "event_id");
    name += ")";
    if (!seen.insert(idx).second) {
      r.problems.push_back(name + ": index appears more than once");
      continue;
    }
    auto jcs_it = e.find("jcs");
    if (jcs_it == e.end() || !jcs_it->value().is_string()) {
      r.problems.push_back(name + ": missing event bytes (jcs)");
      continue;
    }
    std::string data(jcs_it->value().get_string());
    auto canon = CanonicalizeJson(data);
    if (!canon.ok() || *canon != data) {
      r.problems.push_back(name + ": event bytes are not RFC 8785 canonical JSON");
      continue;
    }
    // The event's own event_id must be the one the bundle lists, so a listing cannot lie.
    if (!StringField(e, "event_id").empty()) {
      json::value parsed = ParseJson(data, ec);
      if (ec || !parsed.is_object() ||
          StringField(parsed.get_object(), "event_id") != StringField(e, "event_id")) {
        r.problems.push_back(name + ": the listed event_id is not the event's");
        continue;
      }
    }
    ledger::Hash leaf_hash = ledger::HashLeaf(data);
    if (!StringField(e, "leaf_hash").empty() &&
        StringField(e, "leaf_hash") != HexEncode(leaf_hash)) {
      r.problems.push_back(name + ": event bytes do not hash to the listed leaf hash");
      continue;
    }
    auto proof_it = e.find("proof");
    if (proof_it == e.end() || !proof_it->value().is_array()) {
      r.problems.push_back(name + ": missing inclusion proof");
      continue;
    }
    std::vector<ledger::Hash> proof;
    bool bad = false;
    for (const auto& h : proof_it->value().get_array()) {
      auto raw = h.is_string() ? Base64Decode(h.get_string())
                               : Result<std::vector<uint8_t>>(InvalidArgumentError("x"));
      if (!raw.ok() || raw->size() != 32 || proof.size() >= 64) {
        bad = true;
        break;
      }
      ledger::Hash hash;
      std::copy(raw->begin(), raw->end(), hash.begin());
      proof.push_back(hash);
    }
    if (bad) {
      r.problems.push_back(name + ": malformed proof hash");
      continue;
    }
    if (!cp) continue;  // already reported: nothing to check proofs against
    if (idx >= cp->size) {
      r.problems.push_back(name + ": index is not below the checkpoint's size " +
                           std::to_string(cp->size));
      continue;
    }
    Status st = ledger::VerifyInclusion(idx, cp->size, leaf_hash, proof, cp->root);
    if (!st.ok()) {
      r.problems.push_back(name + ": inclusion proof does not lead to the checkpoint's root (" +
                           st.message() + ")");
      continue;
    }
    r.verified++;
  }
  r.ok = r.problems.empty() && cp.has_value() && r.verified == r.events;
  return r;
}

std::string EvidenceReportJson(const EvidenceReport& r) {
  json::array problems;
  for (const auto& p : r.problems) problems.emplace_back(p);
  return json::serialize(json::object{{"ok", r.ok},
                                      {"origin", r.origin},
                                      {"session", r.session},
                                      {"checkpoint_size", r.checkpoint_size},
                                      {"events", r.events},
                                      {"verified", r.verified},
                                      {"key_pinned", r.key_pinned},
                                      {"problems", std::move(problems)}});
}

}  // namespace custody::investigate
