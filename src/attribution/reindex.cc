#include "attribution/reindex.h"

#include <boost/json.hpp>
#include <ctime>
#include <unordered_map>
#include <vector>

#include "common/json_array.h"
#include "common/json_parse.h"
#include "common/rfc3339.h"

namespace custody::attribution {
namespace {

namespace json = boost::json;
using store::ActionRow;
using store::ContainmentRow;
using store::StoredLeaf;

// Rows written per transaction, as the live indexer's batches.
constexpr size_t kChunk = 512;

const json::object& Obj(const json::object& o, std::string_view key) {
  static const json::object kEmpty;
  auto it = o.find(key);
  return it != o.end() && it->value().is_object() ? it->value().get_object() : kEmpty;
}

Result<json::object> Parse(const StoredLeaf& leaf) {
  boost::system::error_code ec;
  json::value v = ParseJson(leaf.data, ec);
  if (ec || !v.is_object())
    return DataLossError("ledger entry " + std::to_string(leaf.index) + " is not a JSON object");
  return std::move(v.as_object());
}

// An event's time (FormatRfc3339Millis) -> Unix milliseconds; 0 if it is not one.
int64_t MillisOf(const std::string& t) { return ParseRfc3339Millis(t).value_or(0); }

Result<ActionRow> RowOfDecision(const json::object& e, uint64_t index) {
  if (StringField(e, "kind") != "action.decision")
    return InvalidArgumentError("ledger entry " + std::to_string(index) +
                                " is not an action.decision");
  const json::object& session = Obj(e, "session");
  const json::object& trace = Obj(e, "trace");
  const json::object& request = Obj(e, "request");
  ActionRow r;
  r.action_id = StringField(e, "event_id");
  r.decision_index = static_cast<int64_t>(index);
  r.sid = StringField(session, "sid");
  r.root_sid = StringField(session, "root_sid");
  r.agent = StringField(Obj(e, "actor"), "agent");
  r.initiator = StringField(Obj(e, "initiator"), "id");
  r.action = StringField(request, "action");
  r.target = StringField(Obj(request, "target"), "key");
  r.decision = StringField(e, "decision");
  r.trace_id = StringField(trace, "trace_id");
  r.span_id = StringField(trace, "span_id");
  r.txn = StringField(trace, "txn");
  r.time_ms = MillisOf(StringField(e, "time"));
  if (r.action_id.empty()) {
    return InvalidArgumentError("the decision at ledger entry " + std::to_string(index) +
                                " has no event_id");
  }
  return r;
}

// An outcome event's action and status, or nullopt when it names none.
struct Outcome {
  std::string action_id;
  int64_t decision_index = -1;
  std::string status;
};
Outcome OutcomeOf(const json::object& e) {
  Outcome o;
  o.action_id = StringField(e, "action_id");
  if (auto it = e.find("decision_index"); it != e.end() && it->value().is_int64())
    o.decision_index = it->value().get_int64();
  o.status = StringField(Obj(e, "outcome"), "status");
  return o;
}

// The row of `o`'s decision read from the ledger; nullopt if the ledger has no such decision.
Result<std::optional<ActionRow>> DecisionOf(store::LedgerStore& ledger, const Outcome& o) {
  if (o.action_id.empty() || o.decision_index < 0) return std::optional<ActionRow>();
  auto leaf = ledger.GetLeaf(static_cast<uint64_t>(o.decision_index));
  if (!leaf.ok()) {
    if (leaf.status().code() == StatusCode::kNotFound) return std::optional<ActionRow>();
    return leaf.status();
  }
  auto row = ActionRowOf(*leaf);
  if (!row.ok() || row->action_id != o.action_id) return std::optional<ActionRow>();
  return std::optional<ActionRow>(std::move(*row));
}

}  // namespace

Result<ActionRow> ActionRowOf(const StoredLeaf& leaf) {
  ASSIGN_OR_RETURN(json::object e, Parse(leaf));
  return RowOfDecision(e, leaf.index);
}

Result<std::optional<ActionRow>> ActionFromLedger(store::LedgerStore& ledger,
                                                  const std::string& action_id) {
  using Column = store::LedgerStore::Column;
  ASSIGN_OR_RETURN(auto found, ledger.FindLeaves(Column::kEventId, action_id, "action.decision"));
  if (found.empty()) return std::optional<ActionRow>();
  ASSIGN_OR_RETURN(StoredLeaf leaf, ledger.GetLeaf(found.front()));
  ASSIGN_OR_RETURN(ActionRow row, ActionRowOf(leaf));
  // Its outcome, if recorded: an outcome is indexed under the session that acted.
  ASSIGN_OR_RETURN(auto outcomes, ledger.FindLeaves(Column::kSession, row.sid, "action.outcome"));
  for (uint64_t i : outcomes) {
    if (i <= leaf.index) continue;
    ASSIGN_OR_RETURN(StoredLeaf ol, ledger.GetLeaf(i));
    auto e = Parse(ol);
    if (!e.ok()) continue;
    Outcome o = OutcomeOf(*e);
    if (o.action_id != action_id) continue;
    row.outcome_index = static_cast<int64_t>(i);
    row.status = o.status;
    break;
  }
  return std::optional<ActionRow>(std::move(row));
}

Result<ReindexStats> Reindex(store::LedgerStore& ledger, store::AttributionStore& index,
                             uint64_t from) {
  ReindexStats stats;
  stats.from = from;
  ASSIGN_OR_RETURN(stats.to, ledger.LeafCount());
  if (from >= stats.to) {
    RETURN_IF_ERROR(index.RaiseIndexedSize(stats.to));
    return stats;
  }

  // One chunk: decisions written whole, then outcomes (in ledger order each outcome follows its
  // decision, so the last write of a row is its newest state), then containments; then the
  // mark moves past the chunk.
  std::vector<ActionRow> rows;
  std::vector<ActionRow> outcomes;
  std::unordered_map<std::string, size_t> row_at;  // action id -> index in rows
  std::vector<ContainmentRow> containments;
  Status failed;
  auto flush = [&](uint64_t through) -> Status {
    RETURN_IF_ERROR(index.WriteActions(rows, outcomes));
    for (const ContainmentRow& c : containments) {
      Status st = index.InsertContainment(c);
      if (st.ok()) {
        ++stats.containments;
      } else if (st.code() != StatusCode::kAlreadyExists) {
        return st;
      }
    }
    rows.clear();
    outcomes.clear();
    row_at.clear();
    containments.clear();
    return index.RaiseIndexedSize(through);
  };

  Status scanned = ledger.ScanLeaves(from, [&](const StoredLeaf& leaf) {
    if (leaf.index >= stats.to) return false;
    const std::string& kind = leaf.columns.kind;
    if (kind == "action.decision" || kind == "action.outcome" || kind == "containment") {
      auto e = Parse(leaf);
      if (!e.ok()) {
        ++stats.skipped;
      } else if (kind == "action.decision") {
        auto row = RowOfDecision(*e, leaf.index);
        if (!row.ok()) {
          ++stats.skipped;
        } else {
          ++stats.decisions;
          row_at[row->action_id] = rows.size();
          rows.push_back(std::move(*row));
        }
      } else if (kind == "action.outcome") {
        Outcome o = OutcomeOf(*e);
        if (auto it = row_at.find(o.action_id); it != row_at.end()) {
          rows[it->second].outcome_index = static_cast<int64_t>(leaf.index);
          rows[it->second].status = o.status;
          ++stats.outcomes;
        } else {
          // Its decision is in an earlier chunk: the whole row, in case the index lacks it.
          auto decision = DecisionOf(ledger, o);
          if (!decision.ok()) {
            failed = decision.status();
            return false;
          }
          if (!*decision) {
            ++stats.skipped;
          } else {
            (*decision)->outcome_index = static_cast<int64_t>(leaf.index);
            (*decision)->status = o.status;
            outcomes.push_back(std::move(**decision));
            ++stats.outcomes;
          }
        }
      } else {
        ContainmentRow c;
        c.event_id = StringField(*e, "event_id");
        c.scope = StringField(*e, "scope");
        c.subject = StringField(*e, "subject");
        c.reason = StringField(*e, "reason");
        c.trigger_action = StringField(Obj(*e, "trigger"), "action_id");
        c.by = StringField(*e, "by");
        c.time_ms = MillisOf(StringField(*e, "time"));
        c.ledger_index = static_cast<int64_t>(leaf.index);
        if (c.event_id.empty() || c.subject.empty()) {
          ++stats.skipped;
        } else {
          containments.push_back(std::move(c));
        }
      }
    }
    if (rows.size() + outcomes.size() + containments.size() >= kChunk) {
      failed = flush(leaf.index + 1);
      if (!failed.ok()) return false;
    }
    return true;
  });
  RETURN_IF_ERROR(scanned.WithContext("re-indexing: reading the ledger"));
  RETURN_IF_ERROR(failed.WithContext("re-indexing"));
  RETURN_IF_ERROR(flush(stats.to).WithContext("re-indexing"));
  return stats;
}

}  // namespace custody::attribution
