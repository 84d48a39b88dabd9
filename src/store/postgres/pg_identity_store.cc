#include "store/postgres/pg_identity_store.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string_view>
#include <vector>

#include "store/internal/columns.h"
#include "store/internal/string_list.h"
#include "store/postgres/pg_schema.h"

namespace custody::store {

using internal::DecodeStringList;
using internal::EncodeStringList;
using internal::JoinSpaces;
using internal::kAgentColumns;
using internal::kCodeColumns;
using internal::kConsentColumns;
using internal::kFamilyColumns;
using internal::kSessionColumns;
using internal::SplitSpaces;

using identity::Agent;
using identity::InitiatorVerification;
using identity::Session;
using identity::SigningKeyRecord;

namespace {

// Schema steps (store/postgres/pg_schema.h): released steps never change.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE agents(
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  environment TEXT NOT NULL,
  business_owner TEXT NOT NULL,
  technical_owner TEXT NOT NULL,
  sponsor TEXT NOT NULL,
  revocation_contact TEXT NOT NULL,
  grants TEXT NOT NULL,
  permissions TEXT NOT NULL,
  max_delegation_depth BIGINT NOT NULL,
  max_token_lifetime_s BIGINT NOT NULL,
  client_jwk TEXT NOT NULL,
  client_secret_sha256 TEXT NOT NULL,
  disabled BOOLEAN NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE sessions(
  sid TEXT PRIMARY KEY,
  parent_sid TEXT,
  root_sid TEXT NOT NULL,
  depth BIGINT NOT NULL,
  max_depth BIGINT NOT NULL,
  agent TEXT NOT NULL,
  instance TEXT NOT NULL,
  initiator TEXT NOT NULL,
  initiator_issuer TEXT NOT NULL,
  verification TEXT NOT NULL,
  asserted_by TEXT NOT NULL,
  scopes TEXT NOT NULL,
  objective_digest TEXT NOT NULL,
  txn TEXT NOT NULL,
  jti TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked BOOLEAN NOT NULL DEFAULT false,
  revoked_at BIGINT NOT NULL DEFAULT 0,
  revoke_reason TEXT NOT NULL DEFAULT '');
CREATE INDEX sessions_parent ON sessions(parent_sid);
CREATE INDEX sessions_agent ON sessions(agent, revoked);
CREATE INDEX sessions_root ON sessions(root_sid);
CREATE TABLE revoked_jtis(jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE TABLE assertion_jtis(jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
CREATE TABLE signing_keys(
  kid TEXT PRIMARY KEY,
  private_pem TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  retired_at BIGINT NOT NULL,
  publish_until BIGINT NOT NULL);
CREATE TABLE refresh_families(
  family_id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  agent TEXT NOT NULL,
  instance TEXT NOT NULL,
  initiator TEXT NOT NULL,
  initiator_issuer TEXT NOT NULL,
  scopes TEXT NOT NULL,
  resource TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked BOOLEAN NOT NULL DEFAULT false,
  revoked_at BIGINT NOT NULL DEFAULT 0,
  revoke_reason TEXT NOT NULL DEFAULT '',
  current_sha256 TEXT NOT NULL);
CREATE TABLE refresh_tokens(token_sha256 TEXT PRIMARY KEY, family_id TEXT NOT NULL);
CREATE TABLE refresh_family_sessions(
  family_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sid TEXT NOT NULL,
  PRIMARY KEY(family_id, seq));
CREATE TABLE consents(
  client_id TEXT NOT NULL,
  initiator_issuer TEXT NOT NULL,
  initiator TEXT NOT NULL,
  agent TEXT NOT NULL,
  scopes TEXT NOT NULL,
  granted_at BIGINT NOT NULL,
  PRIMARY KEY(client_id, initiator_issuer, initiator));
)sql";
// Version 2: authorization codes (keyed by their SHA-256), so that the node a client's token
// request reaches redeems a code another node issued; `reused` marks a redemption after the
// first.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE authorization_codes(
  code_sha256 TEXT PRIMARY KEY,
  code_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  code_challenge TEXT NOT NULL,
  resource TEXT NOT NULL,
  agent TEXT NOT NULL,
  scopes TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  groups_json TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used BOOLEAN NOT NULL DEFAULT false,
  sid TEXT NOT NULL DEFAULT '',
  family_id TEXT NOT NULL DEFAULT '',
  reused BOOLEAN NOT NULL DEFAULT false);
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);
)sql";
// Version 3: the browser's part of a sign-in and the approvers' sessions (by `kind` and the
// SHA-256 of the browser's secret), so that any node continues a sign-in another started and
// honours an approver session another opened.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE browser_states(
  kind TEXT NOT NULL,
  key_sha256 TEXT NOT NULL,
  body TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY(kind, key_sha256));
CREATE INDEX browser_states_expiry ON browser_states(expires_at);
)sql";
constexpr const char* kSchemaSteps[] = {kSchemaV1, kSchemaV2, kSchemaV3};

PgParam PgBool(bool b) { return PgText(b ? "true" : "false"); }
bool Bool(const PgRows& rows, int i, int c) { return rows.Text(i, c) == "t"; }

std::vector<PgParam> AgentParams(const Agent& a) {
  return {PgText(a.name),
          PgText(a.description),
          PgText(identity::EnvironmentName(a.environment)),
          PgText(a.business_owner),
          PgText(a.technical_owner),
          PgText(a.sponsor),
          PgText(a.revocation_contact),
          PgText(JoinSpaces(a.grants)),
          PgText(JoinSpaces(a.permissions)),
          PgInt(a.max_delegation_depth),
          PgInt(a.max_token_lifetime_s),
          PgText(a.client_jwk),
          PgText(a.client_secret_sha256),
          PgBool(a.disabled),
          PgText(a.created_at),
          PgText(a.updated_at)};
}

// The agent's columns from `b` on (a row that joins the agent to something else).
Result<Agent> ReadAgent(const PgRows& rows, int i, int b = 0) {
  auto t = [&](int c) { return std::string(rows.Text(i, b + c)); };
  Agent a;
  a.name = t(0);
  a.description = t(1);
  ASSIGN_OR_RETURN(a.environment, identity::ParseEnvironment(t(2)));
  a.business_owner = t(3);
  a.technical_owner = t(4);
  a.sponsor = t(5);
  a.revocation_contact = t(6);
  a.grants = SplitSpaces(rows.Text(i, b + 7));
  a.permissions = SplitSpaces(rows.Text(i, b + 8));
  a.max_delegation_depth = static_cast<int>(rows.Int(i, b + 9));
  a.max_token_lifetime_s = rows.Int(i, b + 10);
  a.client_jwk = t(11);
  a.client_secret_sha256 = t(12);
  a.disabled = Bool(rows, i, b + 13);
  a.created_at = t(14);
  a.updated_at = t(15);
  return a;
}

Session ReadSession(const PgRows& rows, int i) {
  auto t = [&](int c) { return std::string(rows.Text(i, c)); };
  Session x;
  x.sid = t(0);
  x.parent_sid = t(1);  // empty when NULL
  x.root_sid = t(2);
  x.depth = static_cast<int>(rows.Int(i, 3));
  x.agent = t(4);
  x.instance = t(5);
  x.initiator = t(6);
  x.initiator_issuer = t(7);
  x.verification =
      t(8) == "asserted" ? InitiatorVerification::kAsserted : InitiatorVerification::kVerified;
  x.asserted_by = t(9);
  x.scopes = SplitSpaces(rows.Text(i, 10));
  x.objective_digest = t(11);
  x.txn = t(12);
  x.jti = t(13);
  x.created_at = rows.Int(i, 14);
  x.expires_at = rows.Int(i, 15);
  x.revoked = Bool(rows, i, 16);
  x.revoked_at = rows.Int(i, 17);
  x.revoke_reason = t(18);
  x.max_depth = static_cast<int>(rows.Int(i, 19));
  return x;
}

// The session and its descendants, parents before children (IdentityStore::SessionTree).
std::string TreeSql() {
  return std::string(
             "WITH RECURSIVE tree(sid) AS (SELECT sid FROM sessions WHERE sid = $1 UNION ALL "
             "SELECT s.sid FROM sessions s JOIN tree ON s.parent_sid = tree.sid) SELECT ") +
         kSessionColumns +
         " FROM sessions WHERE sid IN (SELECT sid FROM tree) ORDER BY depth, created_at, "
         "sid COLLATE \"C\"";
}

template <typename Conn>
Result<std::vector<Session>> ReadTree(Conn& c, const std::string& sid) {
  ASSIGN_OR_RETURN(PgRows rows, c.Exec("read session tree", TreeSql(), {PgText(sid)}));
  std::vector<Session> out;
  out.reserve(rows.size());
  for (int i = 0; i < rows.size(); ++i) out.push_back(ReadSession(rows, i));
  if (out.empty()) return NotFoundError("no session " + sid);
  return out;
}

// Revokes what is live in the tree of `sid`, in the caller's transaction, appending the sids
// revoked now to `revoked` in tree order. Rounds until the tree has nothing live: an update waits
// for a child insert in flight below it (which holds its parent FOR SHARE), and the next read
// (a new snapshot) sees that child.
Status RevokeTreeIn(PgConn& c, const std::string& sid, const std::string& reason, int64_t now,
                    std::vector<std::string>& revoked) {
  for (int round = 0; round < 64; ++round) {
    ASSIGN_OR_RETURN(std::vector<Session> tree, ReadTree(c, sid));
    bool changed = false;
    for (const Session& x : tree) {
      if (x.revoked) continue;
      ASSIGN_OR_RETURN(PgRows u, c.Exec("revoke session",
                                        "UPDATE sessions SET revoked = true, revoked_at = $2, "
                                        "revoke_reason = $3 WHERE sid = $1 AND NOT revoked",
                                        {PgText(x.sid), PgInt(now), PgText(reason)}));
      if (u.affected() > 0) {
        revoked.push_back(x.sid);
        changed = true;
      }
    }
    if (!changed) return OkStatus();
  }
  return UnavailableError("identity database: session tree " + sid + " kept growing");
}

template <typename Conn>
Result<identity::RefreshFamily> ReadFamily(Conn& c, const std::string& family_id,
                                           std::string* current, bool with_sessions) {
  ASSIGN_OR_RETURN(PgRows rows, c.Exec("read refresh family",
                                       std::string("SELECT ") + kFamilyColumns +
                                           " FROM refresh_families WHERE family_id = $1",
                                       {PgText(family_id)}));
  if (rows.size() == 0) return NotFoundError("no refresh family " + family_id);
  auto t = [&](int col) { return std::string(rows.Text(0, col)); };
  identity::RefreshFamily f;
  f.family_id = t(0);
  f.client_id = t(1);
  f.agent = t(2);
  f.instance = t(3);
  f.initiator = t(4);
  f.initiator_issuer = t(5);
  f.scopes = SplitSpaces(rows.Text(0, 6));
  f.resource = t(7);
  f.created_at = rows.Int(0, 8);
  f.expires_at = rows.Int(0, 9);
  f.revoked = Bool(rows, 0, 10);
  f.revoked_at = rows.Int(0, 11);
  f.revoke_reason = t(12);
  if (current != nullptr) *current = t(13);
  if (!with_sessions) return f;
  ASSIGN_OR_RETURN(PgRows sessions,
                   c.Exec("read refresh family sessions",
                          "SELECT sid FROM refresh_family_sessions WHERE family_id = $1 "
                          "ORDER BY seq",
                          {PgText(family_id)}));
  for (int i = 0; i < sessions.size(); ++i) f.sessions.emplace_back(sessions.Text(i, 0));
  return f;
}

identity::AuthorizationCode ReadCode(const PgRows& rows, int i) {
  auto t = [&](int c) { return std::string(rows.Text(i, c)); };
  identity::AuthorizationCode c;
  c.code_id = t(0);
  c.client_id = t(1);
  c.redirect_uri = t(2);
  c.code_challenge = t(3);
  c.resource = t(4);
  c.agent = t(5);
  c.scopes = SplitSpaces(rows.Text(i, 6));
  c.subject = t(7);
  c.issuer = t(8);
  c.name = t(9);
  c.email = t(10);
  c.groups = DecodeStringList(rows.Text(i, 11));
  c.expires_at = rows.Int(i, 12);
  c.used = Bool(rows, i, 13);
  c.sid = t(14);
  c.family_id = t(15);
  return c;
}

identity::Consent ReadConsent(const PgRows& rows, int i) {
  identity::Consent c;
  c.client_id = std::string(rows.Text(i, 0));
  c.initiator_issuer = std::string(rows.Text(i, 1));
  c.initiator = std::string(rows.Text(i, 2));
  c.agent = std::string(rows.Text(i, 3));
  c.scopes = SplitSpaces(rows.Text(i, 4));
  c.granted_at = rows.Int(i, 5);
  return c;
}

}  // namespace

Result<std::unique_ptr<PgIdentityStore>> PgIdentityStore::Open(const std::string& url,
                                                               PgOptions options) {
  return Open(url, nullptr, nullptr, std::move(options));
}

Result<std::unique_ptr<PgIdentityStore>> PgIdentityStore::Open(
    const std::string& url, std::shared_ptr<const crypto::KeyEncryptionKey> key_encryption_key,
    Random* random, PgOptions options) {
  if (key_encryption_key && random == nullptr) {
    return InvalidArgumentError("identity database: key wrapping needs a source of randomness");
  }
  options.what = "identity database";
  ASSIGN_OR_RETURN(std::unique_ptr<PgDb> db, PgDb::Open(url, std::move(options)));
  RETURN_IF_ERROR(ApplyPgSchema(*db, "identity", kSchemaSteps));
  return std::unique_ptr<PgIdentityStore>(
      new PgIdentityStore(std::move(db), std::move(key_encryption_key), random));
}

PgIdentityStore::~PgIdentityStore() = default;

Status PgIdentityStore::CreateAgent(const Agent& agent) {
  Status st =
      db_->Exec("create agent",
                std::string("INSERT INTO agents(") + kAgentColumns +
                    ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                    "$16)",
                AgentParams(agent))
          .status();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("agent \"" + agent.name + "\" exists");
  }
  return st;
}

Status PgIdentityStore::UpdateAgent(const Agent& agent) {
  ASSIGN_OR_RETURN(
      PgRows rows,
      db_->Exec("update agent",
                "UPDATE agents SET description = $2, environment = $3, business_owner = $4, "
                "technical_owner = $5, sponsor = $6, revocation_contact = $7, grants = $8, "
                "permissions = $9, max_delegation_depth = $10, max_token_lifetime_s = $11, "
                "client_jwk = $12, client_secret_sha256 = $13, disabled = $14, created_at = $15, "
                "updated_at = $16 WHERE name = $1",
                AgentParams(agent)));
  if (rows.affected() == 0) return NotFoundError("no agent \"" + agent.name + "\"");
  return OkStatus();
}

Result<Agent> PgIdentityStore::GetAgent(const std::string& name) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read agent",
                                          std::string("SELECT ") + kAgentColumns +
                                              " FROM agents WHERE name = $1",
                                          {PgText(name)}));
  if (rows.size() == 0) return NotFoundError("no agent \"" + name + "\"");
  return ReadAgent(rows, 0);
}

Result<std::vector<Agent>> PgIdentityStore::ListAgents() {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("list agents", std::string("SELECT ") + kAgentColumns +
                                                             " FROM agents ORDER BY name "
                                                             "COLLATE \"C\""));
  std::vector<Agent> out;
  for (int i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(Agent a, ReadAgent(rows, i));
    out.push_back(std::move(a));
  }
  return out;
}

Status PgIdentityStore::CreateSession(const Session& x) {
  return db_->Transact("create session", [&](PgConn& c) -> Status {
    // The parent revoked, or the agent disabled, since the exchange verified them: refused. The
    // rows stay locked FOR SHARE until this insert commits, so a revocation or DisableAgent on
    // another node waits for it (and then sees the new session) or wins before it.
    if (!x.parent_sid.empty()) {
      ASSIGN_OR_RETURN(
          PgRows parent,
          c.Exec("check session parent", "SELECT revoked FROM sessions WHERE sid = $1 FOR SHARE",
                 {PgText(x.parent_sid)}));
      if (parent.size() != 0 && Bool(parent, 0, 0)) {
        return FailedPreconditionError("session " + x.parent_sid + " has been revoked");
      }
    }
    ASSIGN_OR_RETURN(PgRows agent, c.Exec("check session agent",
                                          "SELECT disabled FROM agents WHERE name = $1 FOR SHARE",
                                          {PgText(x.agent)}));
    if (agent.size() != 0 && Bool(agent, 0, 0)) {
      return FailedPreconditionError("agent \"" + x.agent + "\" is disabled");
    }
    Status st =
        c.Exec(
             "create session",
             std::string("INSERT INTO sessions(") + kSessionColumns +
                 ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                 "$16, $17, $18, $19, $20)",
             {PgText(x.sid),
              x.parent_sid.empty() ? PgNull() : PgText(x.parent_sid),
              PgText(x.root_sid),
              PgInt(x.depth),
              PgText(x.agent),
              PgText(x.instance),
              PgText(x.initiator),
              PgText(x.initiator_issuer),
              PgText(x.verification == InitiatorVerification::kAsserted ? "asserted" : "verified"),
              PgText(x.asserted_by),
              PgText(JoinSpaces(x.scopes)),
              PgText(x.objective_digest),
              PgText(x.txn),
              PgText(x.jti),
              PgInt(x.created_at),
              PgInt(x.expires_at),
              PgBool(x.revoked),
              PgInt(x.revoked_at),
              PgText(x.revoke_reason),
              PgInt(x.max_depth)})
            .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("session " + x.sid + " exists");
    }
    return st;
  });
}

Result<Session> PgIdentityStore::GetSession(const std::string& sid) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read session",
                                          std::string("SELECT ") + kSessionColumns +
                                              " FROM sessions WHERE sid = $1",
                                          {PgText(sid)}));
  if (rows.size() == 0) return NotFoundError("no session " + sid);
  return ReadSession(rows, 0);
}

namespace {

// A column list `a, b, c` with each name qualified by `table`: `t.a, t.b, t.c`.
std::string Qualified(const char* table, std::string_view columns) {
  std::string out;
  while (!columns.empty()) {
    size_t comma = columns.find(',');
    std::string_view name = columns.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    out += (out.empty() ? "" : ", ") + std::string(table) + "." + std::string(name);
    columns = comma == std::string_view::npos ? std::string_view() : columns.substr(comma + 1);
  }
  return out;
}

}  // namespace

namespace {

// GetSessionForToken's select list and join, without its WHERE: the session's 20 columns, whether
// the jti (`jti`, a parameter or a column) is revoked, then the agent's columns (NULLs when the
// agent is gone).
std::string SessionForTokenSelect(std::string_view jti = "$2") {
  return "SELECT " + Qualified("s", kSessionColumns) +
         ", EXISTS(SELECT 1 FROM revoked_jtis r WHERE r.jti = " + std::string(jti) + "), " +
         Qualified("a", kAgentColumns) + " FROM sessions s LEFT JOIN agents a ON a.name = s.agent";
}
// GetSessionForTokenAndCountCall's statement for one call whose sid, jti, target, time_ms,
// since_ms, expired_at_s and subject are the expressions `p` (parameters, or the columns of a
// batch's row): SessionForTokenSelect's columns and one more, the call counted by
// custody_count_call (attribution schema) in a CASE on CountsCall's conditions.
std::string CountedReadSql(const std::string (&p)[7]) {
  std::string select = SessionForTokenSelect(p[1]);
  size_t from = select.find(" FROM sessions s");
  return select.substr(0, from) + ", CASE WHEN s.jti = " + p[1] +
         " AND a.name IS NOT NULL AND (s.revoked OR (s.expires_at > " + p[5] +
         " AND NOT EXISTS(SELECT 1 FROM revoked_jtis r WHERE r.jti = " + p[1] + "))) AND (" + p[6] +
         " = '' OR s.agent = " + p[6] + " OR s.instance = " + p[6] +
         ") THEN (SELECT ARRAY[c.calls, c.denials, c.targets, c.calls_since] FROM "
         "custody_count_call(" +
         p[0] + ", " + p[2] + ", " + p[3] + ", " + p[4] + ") c) END" + select.substr(from) +
         " WHERE s.sid = " + p[0];
}
constexpr int ColumnCount(std::string_view columns) {
  int n = 1;
  for (char c : columns) n += c == ',' ? 1 : 0;
  return n;
}
constexpr int kJtiRevokedColumn = ColumnCount(kSessionColumns);  // after the session's columns
constexpr int kAgentColumnCount = ColumnCount(kAgentColumns);

Result<SessionForToken> ReadSessionForToken(const PgRows& rows, int i = 0) {
  SessionForToken out;
  out.session = ReadSession(rows, i);
  out.jti_revoked = Bool(rows, i, kJtiRevokedColumn);
  if (!rows.IsNull(i, kJtiRevokedColumn + 1)) {
    ASSIGN_OR_RETURN(out.agent, ReadAgent(rows, i, kJtiRevokedColumn + 1));
  }
  return out;
}

// custody_count_call's four numbers as a bigint[] in text: "{calls,denials,targets,since}".
Result<SessionCounts> ParseCounts(std::string_view text) {
  int64_t v[4] = {0, 0, 0, 0};
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    return InternalError("unexpected session counters from the database");
  }
  text = text.substr(1, text.size() - 2);
  for (int i = 0; i < 4; ++i) {
    size_t comma = text.find(',');
    std::string_view n = text.substr(0, comma);
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), v[i]);
    if (ec != std::errc() || end != n.data() + n.size() || (i < 3) == (comma == text.npos)) {
      return InternalError("unexpected session counters from the database");
    }
    text = comma == text.npos ? std::string_view() : text.substr(comma + 1);
  }
  return SessionCounts{v[0], v[1], v[2], v[3]};
}

}  // namespace

// One statement: the session, whether the jti is revoked, and the agent (NULLs when gone).
Result<SessionForToken> PgIdentityStore::GetSessionForToken(const std::string& sid,
                                                            const std::string& jti) {
  static const std::string sql = SessionForTokenSelect() + " WHERE s.sid = $1";
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("read session for token", sql, {PgText(sid), PgText(jti)}));
  if (rows.size() == 0) return NotFoundError("no session " + sid);
  return ReadSessionForToken(rows);
}

namespace {

// The counted read's columns: SessionForTokenSelect's, then the count (NULL when not counted).
constexpr int kCountsColumn = kJtiRevokedColumn + 1 + kAgentColumnCount;

// A row of GetSessionForTokenAndCountCall's statement (or of the batch's) as its answer.
Result<CountedSessionRead> ReadCounted(const PgRows& rows, int i) {
  CountedSessionRead out;
  ASSIGN_OR_RETURN(out.read, ReadSessionForToken(rows, i));
  if (!rows.IsNull(i, kCountsColumn)) {
    ASSIGN_OR_RETURN(out.counts, ParseCounts(rows.Text(i, kCountsColumn)));
  }
  return out;
}

// An array literal of `n` elements, element i written by `put(out, i)`.
template <typename Put>
std::string ArrayLiteral(size_t n, Put put) {
  std::string out = "{";
  for (size_t i = 0; i < n; ++i) {
    if (i != 0) out += ',';
    put(out, i);
  }
  return out + "}";
}
// A text[] element: double-quoted, `"` and `\` escaped.
void QuoteElement(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

// The calls of concurrent authorizations, counted together (GetSessionForTokenAndCountCall).
struct PgIdentityStore::PendingCount {
  const std::string& sid;
  const std::string& jti;
  const CallToCount& call;
  std::optional<Result<CountedSessionRead>> result;  // set by the batch that took it
};

std::vector<Result<CountedSessionRead>> PgIdentityStore::GetSessionsForTokensAndCountCalls(
    const std::vector<CountRequest>& calls) {
  std::vector<PendingCount> pending;
  pending.reserve(calls.size());
  for (const CountRequest& c : calls) pending.push_back(PendingCount{c.sid, c.jti, c.call, {}});
  std::vector<PendingCount*> batch;
  for (PendingCount& p : pending) batch.push_back(&p);
  return CountBatch(batch);
}

// The counted read in one statement: GetSessionForToken's, plus the call counted by
// custody_count_call in a CASE on CountsCall's conditions so that the count runs only for a
// session row that passes them (a CASE evaluates the branch it takes only; the count is a
// subquery of the select list, which is not evaluated without a row). The function takes the
// session's counter row lock and reads in snapshots of its own (it is VOLATILE), so counts stay
// exact across nodes as with CountCall; its synchronous_commit off covers this statement's
// transaction alone.
//
// Each statement is a transaction and a round trip, and their fixed cost (the protocol, the
// transaction's start and commit, loopback TCP on both sides) was about a quarter of
// PostgreSQL's CPU per authorization (docs/PERFORMANCE.md). So calls that arrive while
// kMaxCountBatches statements (one) are already running wait and go together, up to
// kMaxCountBatch in one statement (one transaction): whoever finds a free slot sends every call
// waiting then. A lone call goes at once, alone, as before. A batch counts its calls in the order
// of their sids (bytewise; a session's calls in their order of arrival) and holds each counted
// session's row lock until it commits: every batch of every node takes its locks in that one order,
// so two batches never wait for each other in a cycle.
Result<CountedSessionRead> PgIdentityStore::GetSessionForTokenAndCountCall(
    const std::string& sid, const std::string& jti, const CallToCount& call) {
  PendingCount me{sid, jti, call, std::nullopt};
  MutexLock lock(count_mu_);
  count_queue_.push_back(&me);
  while (!me.result.has_value()) {
    if (counts_in_flight_ >= kMaxCountBatches || count_queue_.empty()) {
      count_done_.Wait(count_mu_);
      continue;
    }
    const size_t n = std::min(count_queue_.size(), kMaxCountBatch);
    std::vector<PendingCount*> batch(count_queue_.begin(), count_queue_.begin() + n);
    count_queue_.erase(count_queue_.begin(), count_queue_.begin() + n);
    ++counts_in_flight_;
    lock.Unlock();
    if (n > 1) batched_counts_ += n;
    // Each result is set before the lock is taken again; the waiters read it only with the
    // lock held, after the loop below.
    std::vector<Result<CountedSessionRead>> results = CountBatch(batch);
    lock.Lock();
    --counts_in_flight_;
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    count_done_.NotifyAll();
  }
  return std::move(*me.result);
}

std::vector<Result<CountedSessionRead>> PgIdentityStore::CountBatch(
    const std::vector<PendingCount*>& batch) {
  constexpr std::string_view kWhat = "read session for token and count its call";
  if (batch.empty()) return {};
  if (batch.size() == 1) {
    static const std::string sql = CountedReadSql({"$1", "$2", "$3", "$4", "$5", "$6", "$7"});
    const PendingCount& p = *batch[0];
    Result<PgRows> rows =
        db_->Exec(kWhat, sql,
                  {PgText(p.sid), PgText(p.jti), PgText(p.call.target), PgInt(p.call.time_ms),
                   PgInt(p.call.since_ms), PgInt(p.call.expired_at_s), PgText(p.call.subject)});
    std::vector<Result<CountedSessionRead>> out;
    if (!rows.ok()) {
      out.push_back(rows.status());
    } else if (rows->size() == 0) {
      out.push_back(NotFoundError("no session " + p.sid));
    } else {
      out.push_back(ReadCounted(*rows, 0));
    }
    return out;
  }
  // One row per call, in the lock order; each row's statement is the single call's, run by a
  // nested loop over the calls in array order (LATERAL, and OFFSET 0 so that the planner does
  // not flatten it into a join of its own order). A call whose session is absent has no row.
  // The LIMIT, the batch's size, is there for the planner: without it a generic plan reckons
  // with 100 calls, never looks cheaper than a custom plan for the few of each batch, and the
  // statement is planned again on every execution. So there is one statement per batch size.
  static const std::vector<std::string> sqls = [] {
    std::vector<std::string> v(kMaxCountBatch + 1);
    for (size_t n = 2; n <= kMaxCountBatch; ++n) {
      v[n] =
          "SELECT x.*, q.n FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
          "$4::bigint[], $5::bigint[], $6::bigint[], $7::text[]) WITH ORDINALITY AS q(sid, jti, "
          "target, time_ms, since_ms, expired_at, subject, n) LIMIT " +
          std::to_string(n) + ") q CROSS JOIN LATERAL (" +
          CountedReadSql({"q.sid", "q.jti", "q.target", "q.time_ms", "q.since_ms", "q.expired_at",
                          "q.subject"}) +
          " OFFSET 0) x";
    }
    return v;
  }();
  if (batch.size() > kMaxCountBatch) {
    return std::vector<Result<CountedSessionRead>>(
        batch.size(), InvalidArgumentError("at most " + std::to_string(kMaxCountBatch) +
                                           " counted session reads in one statement"));
  }
  const std::string& sql = sqls[batch.size()];
  std::vector<size_t> order(batch.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return batch[a]->sid < batch[b]->sid; });
  auto texts = [&](auto field) {
    return PgText(ArrayLiteral(order.size(), [&](std::string& out, size_t i) {
      QuoteElement(out, field(*batch[order[i]]));
    }));
  };
  auto ints = [&](auto field) {
    return PgText(ArrayLiteral(order.size(), [&](std::string& out, size_t i) {
      out += std::to_string(field(*batch[order[i]]));
    }));
  };
  Result<PgRows> rows =
      db_->Exec(kWhat, sql,
                {texts([](const PendingCount& p) -> std::string_view { return p.sid; }),
                 texts([](const PendingCount& p) -> std::string_view { return p.jti; }),
                 texts([](const PendingCount& p) -> std::string_view { return p.call.target; }),
                 ints([](const PendingCount& p) { return p.call.time_ms; }),
                 ints([](const PendingCount& p) { return p.call.since_ms; }),
                 ints([](const PendingCount& p) { return p.call.expired_at_s; }),
                 texts([](const PendingCount& p) -> std::string_view { return p.call.subject; })});
  std::vector<Result<CountedSessionRead>> out;
  out.reserve(batch.size());
  if (!rows.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) out.push_back(rows.status());
    return out;
  }
  for (const PendingCount* p : batch) out.push_back(NotFoundError("no session " + p->sid));
  const int n_column = kCountsColumn + 1;
  for (int r = 0; r < rows->size(); ++r) {
    const int64_t n = rows->Int(r, n_column);  // 1-based, in `order`
    if (n < 1 || static_cast<size_t>(n) > order.size()) {
      return std::vector<Result<CountedSessionRead>>(
          batch.size(), InternalError("unexpected row from the counted session reads"));
    }
    out[order[n - 1]] = ReadCounted(*rows, r);
  }
  return out;
}

Result<std::vector<Session>> PgIdentityStore::SessionTree(const std::string& sid) {
  return ReadTree(*db_, sid);
}

Result<std::vector<std::string>> PgIdentityStore::RevokeSessionTree(const std::string& sid,
                                                                    const std::string& reason,
                                                                    int64_t now) {
  std::vector<std::string> revoked;
  RETURN_IF_ERROR(db_->Transact("revoke session tree", [&](PgConn& c) -> Status {
    revoked.clear();
    return RevokeTreeIn(c, sid, reason, now, revoked);
  }));
  return revoked;
}

Result<std::vector<std::string>> PgIdentityStore::RevokeAgentSessions(const std::string& agent,
                                                                      const std::string& reason,
                                                                      int64_t now) {
  std::vector<std::string> revoked;
  RETURN_IF_ERROR(db_->Transact("revoke agent sessions", [&](PgConn& c) -> Status {
    revoked.clear();
    ASSIGN_OR_RETURN(PgRows roots,
                     c.Exec("read agent sessions",
                            "SELECT sid FROM sessions WHERE agent = $1 AND NOT revoked "
                            "ORDER BY depth, created_at, sid COLLATE \"C\"",
                            {PgText(agent)}));
    for (int i = 0; i < roots.size(); ++i) {
      RETURN_IF_ERROR(RevokeTreeIn(c, std::string(roots.Text(i, 0)), reason, now, revoked));
    }
    return OkStatus();
  }));
  return revoked;
}

Status PgIdentityStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  return db_
      ->Exec("revoke jti",
             "INSERT INTO revoked_jtis(jti, expires_at) VALUES($1, $2) ON CONFLICT DO NOTHING",
             {PgText(jti), PgInt(expires_at)})
      .status();
}

Result<bool> PgIdentityStore::IsJtiRevoked(const std::string& jti) {
  ASSIGN_OR_RETURN(
      PgRows rows,
      db_->Exec("read revoked jti", "SELECT 1 FROM revoked_jtis WHERE jti = $1", {PgText(jti)}));
  return rows.size() != 0;
}

Status PgIdentityStore::UseAssertionJti(const std::string& jti, int64_t expires_at) {
  Status st = db_->Exec("record assertion jti",
                        "INSERT INTO assertion_jtis(jti, expires_at) VALUES($1, $2)",
                        {PgText(jti), PgInt(expires_at)})
                  .status();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("client assertion jti already used");
  }
  return st;
}

Status PgIdentityStore::PurgeAssertionJtis(int64_t before) {
  return db_
      ->Exec("purge assertion jtis", "DELETE FROM assertion_jtis WHERE expires_at < $1",
             {PgInt(before)})
      .status();
}

Status PgIdentityStore::PutSigningKey(const SigningKeyRecord& k) {
  return db_
      ->Exec("store signing key",
             "INSERT INTO signing_keys(kid, private_pem, created_at, retired_at, publish_until) "
             "VALUES($1, $2, $3, $4, $5) ON CONFLICT (kid) DO UPDATE SET private_pem = "
             "EXCLUDED.private_pem, created_at = EXCLUDED.created_at, retired_at = "
             "EXCLUDED.retired_at, publish_until = EXCLUDED.publish_until",
             {PgText(k.kid),
              PgText(kek_ ? kek_->Wrap(k.private_pem, crypto::TokenSigningKeySlot(k.kid), *random_)
                          : k.private_pem),
              PgInt(k.created_at), PgInt(k.retired_at), PgInt(k.publish_until)})
      .status();
}

Result<std::vector<SigningKeyRecord>> PgIdentityStore::ListSigningKeys() {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("list signing keys",
                             "SELECT kid, private_pem, created_at, retired_at, publish_until "
                             "FROM signing_keys ORDER BY created_at, kid COLLATE \"C\""));
  std::vector<SigningKeyRecord> out;
  for (int i = 0; i < rows.size(); ++i) {
    SigningKeyRecord r{std::string(rows.Text(i, 0)), std::string(rows.Text(i, 1)), rows.Int(i, 2),
                       rows.Int(i, 3), rows.Int(i, 4)};
    if (kek_) {
      // A row the key does not open was not written by a node of this deployment (or was
      // altered, or moved from another kid): never sign with it.
      if (!crypto::KeyEncryptionKey::LooksWrapped(r.private_pem)) {
        return FailedPreconditionError("token signing key " + r.kid + " in " + db_->where() +
                                       " is not wrapped with a key encryption key; refusing it");
      }
      auto pem = kek_->Unwrap(r.private_pem, crypto::TokenSigningKeySlot(r.kid));
      if (!pem.ok()) {
        return FailedPreconditionError(
            "the key encryption key does not open the stored token signing key " + r.kid +
            ": wrong key?");
      }
      r.private_pem = std::move(*pem);
    }
    out.push_back(std::move(r));
  }
  return out;
}

Status PgIdentityStore::CreateRefreshFamily(const identity::RefreshFamily& f,
                                            const std::string& token_sha256) {
  return db_->Transact("create refresh family", [&](PgConn& c) -> Status {
    Status st =
        c.Exec("create refresh family",
               std::string("INSERT INTO refresh_families(") + kFamilyColumns +
                   ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
               {PgText(f.family_id), PgText(f.client_id), PgText(f.agent), PgText(f.instance),
                PgText(f.initiator), PgText(f.initiator_issuer), PgText(JoinSpaces(f.scopes)),
                PgText(f.resource), PgInt(f.created_at), PgInt(f.expires_at), PgBool(f.revoked),
                PgInt(f.revoked_at), PgText(f.revoke_reason), PgText(token_sha256)})
            .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("refresh family " + f.family_id + " exists");
    }
    RETURN_IF_ERROR(st);
    st = c.Exec("store refresh token hash",
                "INSERT INTO refresh_tokens(token_sha256, family_id) VALUES($1, $2)",
                {PgText(token_sha256), PgText(f.family_id)})
             .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("refresh token hash exists");
    }
    RETURN_IF_ERROR(st);
    int64_t seq = 0;
    for (const std::string& sid : f.sessions) {
      RETURN_IF_ERROR(c.Exec("store refresh family session",
                             "INSERT INTO refresh_family_sessions(family_id, seq, sid) "
                             "VALUES($1, $2, $3)",
                             {PgText(f.family_id), PgInt(seq++), PgText(sid)})
                          .status());
    }
    return OkStatus();
  });
}

Result<identity::RefreshLookup> PgIdentityStore::FindRefreshToken(const std::string& token_sha256) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read refresh token",
                                          "SELECT family_id FROM refresh_tokens "
                                          "WHERE token_sha256 = $1",
                                          {PgText(token_sha256)}));
  if (rows.size() == 0) return NotFoundError("unknown refresh token");
  std::string current;
  ASSIGN_OR_RETURN(identity::RefreshFamily f,
                   ReadFamily(*db_, std::string(rows.Text(0, 0)), &current,
                              /*with_sessions=*/false));
  return identity::RefreshLookup{std::move(f), current == token_sha256};
}

Status PgIdentityStore::RotateRefreshToken(const std::string& family_id,
                                           const std::string& presented_sha256,
                                           const std::string& next_sha256, const std::string& sid) {
  return db_->Transact("rotate refresh token", [&](PgConn& c) -> Status {
    // The compare-and-set: a token rotated out by a concurrent refresh, or a revoked family,
    // matches no row. The updated row stays locked to the commit, which orders concurrent
    // appends to the family (their seq must differ).
    ASSIGN_OR_RETURN(PgRows rotated,
                     c.Exec("rotate refresh token",
                            "UPDATE refresh_families SET current_sha256 = $3 WHERE family_id = $1 "
                            "AND current_sha256 = $2 AND NOT revoked RETURNING 1",
                            {PgText(family_id), PgText(presented_sha256), PgText(next_sha256)}));
    if (rotated.size() == 0) {
      ASSIGN_OR_RETURN(PgRows family, c.Exec("read refresh family",
                                             "SELECT revoked FROM refresh_families "
                                             "WHERE family_id = $1",
                                             {PgText(family_id)}));
      if (family.size() == 0) return NotFoundError("no refresh family " + family_id);
      if (Bool(family, 0, 0)) {
        return FailedPreconditionError("refresh family " + family_id + " is revoked");
      }
      return FailedPreconditionError("refresh token is no longer current");
    }
    Status st = c.Exec("store refresh token hash",
                       "INSERT INTO refresh_tokens(token_sha256, family_id) VALUES($1, $2)",
                       {PgText(next_sha256), PgText(family_id)})
                    .status();
    if (st.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("refresh token hash exists");
    }
    RETURN_IF_ERROR(st);
    // The next seq from the last one on the (family_id, seq) key, not a count of the history.
    return c
        .Exec("store refresh family session",
              "INSERT INTO refresh_family_sessions(family_id, seq, sid) VALUES($1, "
              "COALESCE((SELECT seq FROM refresh_family_sessions WHERE family_id = $1 "
              "ORDER BY seq DESC LIMIT 1) + 1, 0), $2)",
              {PgText(family_id), PgText(sid)})
        .status();
  });
}

Result<identity::RefreshFamily> PgIdentityStore::RevokeRefreshFamily(const std::string& family_id,
                                                                     const std::string& reason,
                                                                     int64_t now) {
  RETURN_IF_ERROR(db_->Exec("revoke refresh family",
                            "UPDATE refresh_families SET revoked = true, revoked_at = $2, "
                            "revoke_reason = $3 WHERE family_id = $1 AND NOT revoked",
                            {PgText(family_id), PgInt(now), PgText(reason)})
                      .status());
  return ReadFamily(*db_, family_id, nullptr, /*with_sessions=*/true);
}

Status PgIdentityStore::CreateAuthorizationCode(const identity::AuthorizationCode& c,
                                                const std::string& code_sha256) {
  Status st =
      db_->Exec("store authorization code",
                std::string("INSERT INTO authorization_codes(") + kCodeColumns +
                    ", code_sha256) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                    "$13, $14, $15, $16, $17)",
                {PgText(c.code_id), PgText(c.client_id), PgText(c.redirect_uri),
                 PgText(c.code_challenge), PgText(c.resource), PgText(c.agent),
                 PgText(JoinSpaces(c.scopes)), PgText(c.subject), PgText(c.issuer), PgText(c.name),
                 PgText(c.email), PgText(EncodeStringList(c.groups)), PgInt(c.expires_at),
                 PgBool(c.used), PgText(c.sid), PgText(c.family_id), PgText(code_sha256)})
          .status();
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("authorization code hash exists");
  }
  return st;
}

Result<identity::CodeRedemption> PgIdentityStore::RedeemAuthorizationCode(
    const std::string& code_sha256) {
  // One statement: the row lock orders concurrent redemptions on every node, and the SET's
  // right-hand sides read the row as it was, so `reused` comes back true for all but the first.
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("redeem authorization code",
                             std::string("UPDATE authorization_codes SET reused = used, used = "
                                         "true WHERE code_sha256 = $1 RETURNING ") +
                                 kCodeColumns + ", reused",
                             {PgText(code_sha256)}));
  if (rows.size() == 0) return NotFoundError("unknown authorization code");
  return identity::CodeRedemption{ReadCode(rows, 0), !Bool(rows, 0, 16)};
}

Result<bool> PgIdentityStore::NoteAuthorizationCodeIssued(const std::string& code_sha256,
                                                          const std::string& sid,
                                                          const std::string& family_id) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("note authorization code issuance",
                                          "UPDATE authorization_codes SET sid = $2, family_id = "
                                          "$3 WHERE code_sha256 = $1 RETURNING reused",
                                          {PgText(code_sha256), PgText(sid), PgText(family_id)}));
  if (rows.size() == 0) return NotFoundError("unknown authorization code");
  return Bool(rows, 0, 0);
}

Status PgIdentityStore::PurgeAuthorizationCodes(int64_t now, int64_t used_grace_s) {
  return db_
      ->Exec("purge authorization codes",
             "DELETE FROM authorization_codes WHERE expires_at + (CASE WHEN used THEN "
             "$2::bigint ELSE 0 END) <= $1::bigint",
             {PgInt(now), PgInt(used_grace_s)})
      .status();
}

Status PgIdentityStore::PutBrowserState(const std::string& kind, const std::string& key_sha256,
                                        const std::string& body, int64_t expires_at) {
  Status st = db_->Exec("store browser state",
                        "INSERT INTO browser_states(kind, key_sha256, body, expires_at) "
                        "VALUES($1, $2, $3, $4)",
                        {PgText(kind), PgText(key_sha256), PgText(body), PgInt(expires_at)})
                  .status();
  if (st.code() == StatusCode::kAlreadyExists) return AlreadyExistsError("browser state exists");
  return st;
}

Result<std::string> PgIdentityStore::TakeBrowserState(const std::string& kind,
                                                      const std::string& key_sha256, int64_t now) {
  // One statement: the row lock orders concurrent takes on every node; one deletes the row and
  // gets it, the others find nothing.
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("take browser state",
                                          "DELETE FROM browser_states WHERE kind = $1 AND "
                                          "key_sha256 = $2 RETURNING body, expires_at",
                                          {PgText(kind), PgText(key_sha256)}));
  if (rows.size() == 0) return NotFoundError("unknown browser state");
  if (rows.Int(0, 1) <= now) return NotFoundError("unknown browser state");
  return std::string(rows.Text(0, 0));
}

Result<std::string> PgIdentityStore::GetBrowserState(const std::string& kind,
                                                     const std::string& key_sha256, int64_t now) {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("read browser state",
                                          "SELECT body FROM browser_states WHERE kind = $1 AND "
                                          "key_sha256 = $2 AND expires_at > $3::bigint",
                                          {PgText(kind), PgText(key_sha256), PgInt(now)}));
  if (rows.size() == 0) return NotFoundError("unknown browser state");
  return std::string(rows.Text(0, 0));
}

Status PgIdentityStore::PurgeBrowserStates(int64_t now) {
  return db_
      ->Exec("purge browser states", "DELETE FROM browser_states WHERE expires_at <= $1::bigint",
             {PgInt(now)})
      .status();
}

Status PgIdentityStore::PutConsent(const identity::Consent& c) {
  return db_
      ->Exec("store consent",
             "INSERT INTO consents(client_id, initiator_issuer, initiator, agent, scopes, "
             "granted_at) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT (client_id, "
             "initiator_issuer, initiator) DO UPDATE SET agent = EXCLUDED.agent, scopes = "
             "EXCLUDED.scopes, granted_at = EXCLUDED.granted_at",
             {PgText(c.client_id), PgText(c.initiator_issuer), PgText(c.initiator), PgText(c.agent),
              PgText(JoinSpaces(c.scopes)), PgInt(c.granted_at)})
      .status();
}

Result<identity::Consent> PgIdentityStore::GetConsent(const std::string& initiator_issuer,
                                                      const std::string& initiator,
                                                      const std::string& client_id) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("read consent",
                             std::string("SELECT ") + kConsentColumns +
                                 " FROM consents WHERE client_id = $1 AND "
                                 "initiator_issuer = $2 AND initiator = $3",
                             {PgText(client_id), PgText(initiator_issuer), PgText(initiator)}));
  if (rows.size() == 0) return NotFoundError("no consent");
  return ReadConsent(rows, 0);
}

Result<std::vector<identity::Consent>> PgIdentityStore::ListConsents() {
  ASSIGN_OR_RETURN(PgRows rows, db_->Exec("list consents",
                                          std::string("SELECT ") + kConsentColumns +
                                              " FROM consents ORDER BY client_id COLLATE \"C\", "
                                              "initiator_issuer COLLATE \"C\", "
                                              "initiator COLLATE \"C\""));
  std::vector<identity::Consent> out;
  for (int i = 0; i < rows.size(); ++i) out.push_back(ReadConsent(rows, i));
  return out;
}

Status PgIdentityStore::DeleteConsent(const std::string& initiator_issuer,
                                      const std::string& initiator, const std::string& client_id) {
  ASSIGN_OR_RETURN(PgRows rows,
                   db_->Exec("delete consent",
                             "DELETE FROM consents WHERE client_id = $1 AND "
                             "initiator_issuer = $2 AND initiator = $3",
                             {PgText(client_id), PgText(initiator_issuer), PgText(initiator)}));
  if (rows.affected() == 0) return NotFoundError("no consent");
  return OkStatus();
}

}  // namespace custody::store
