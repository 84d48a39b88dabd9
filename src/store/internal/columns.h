// What the SQL backends (store/sqlite/, store/postgres/) share about their rows: the column
// lists of the tables both lay out alike, and the one encoding of a list of words (scopes,
// grants, permissions) as one space-separated text column. Only store/ includes this.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/words.h"

namespace custody::store::internal {

inline constexpr const char* kAdminTokenColumns = "id, hash, role, label, created_ms, revoked_ms";
inline constexpr const char* kActionColumns =
    "action_id, decision_index, outcome_index, sid, root_sid, agent, initiator, action, target, "
    "decision, trace_id, span_id, txn, time_ms, status";
// `approver_group` is ApprovalRow::group (GROUP is an SQL keyword).
inline constexpr const char* kApprovalColumns =
    "id, digest, state, sid, root_sid, agent, instance, initiator, action, target, "
    "approver_group, policies, request_action, requested_ms, expires_ms, approver, verified_by, "
    "reason, decided_ms, decided_index, used_by, uses";
inline constexpr const char* kAgentColumns =
    "name, description, environment, business_owner, technical_owner, sponsor, "
    "revocation_contact, grants, permissions, max_delegation_depth, max_token_lifetime_s, "
    "client_jwk, client_secret_sha256, disabled, created_at, updated_at";
inline constexpr const char* kSessionColumns =
    "sid, parent_sid, root_sid, depth, agent, instance, initiator, initiator_issuer, "
    "verification, asserted_by, scopes, objective_digest, txn, jti, created_at, expires_at, "
    "revoked, revoked_at, revoke_reason, max_depth";
inline constexpr const char* kFamilyColumns =
    "family_id, client_id, agent, instance, initiator, initiator_issuer, scopes, resource, "
    "created_at, expires_at, revoked, revoked_at, revoke_reason, current_sha256";
// An authorization code's row, without its key (code_sha256); `groups_json` is a JSON array
// (internal/string_list.h): group names may hold spaces.
inline constexpr const char* kCodeColumns =
    "code_id, client_id, redirect_uri, code_challenge, resource, agent, scopes, subject, issuer, "
    "name, email, groups_json, expires_at, used, sid, family_id";
inline constexpr const char* kConsentColumns =
    "client_id, initiator_issuer, initiator, agent, scopes, granted_at";

// The word lists (common/words.h).
using custody::JoinSpaces;
using custody::SplitSpaces;

}  // namespace custody::store::internal
