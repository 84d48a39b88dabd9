-- wrk script: RFC 8693 token exchanges against POST /oauth2/token. Without SUBJECT, each request
-- starts a root session for an asserted initiator: client_secret authentication, the actor
-- JWT-SVID verified (ES256), the access token signed (ES256), its session stored and its
-- session.start event recorded in the ledger before the answer. With SUBJECT (a Custody access
-- token), each request delegates from that token's session instead: its signature verified too
-- (two ES256 verifications and one signature), its session and revocation state read, and a
-- delegation event recorded. Env: CLIENT, SECRET, SVID, SUBJECT (optional), ASSERTIONS and
-- WRK_THREADS (wrk's -t), GRANT (optional).
-- With ASSERTIONS (a file of client assertions, one a line, from bench/token_assertions.mjs), the
-- client authenticates with private_key_jwt instead: each request sends the next assertion (the
-- file's lines split between wrk's threads; a jti is never sent twice, and running out of them
-- shows as Non-2xx answers), so each records its jti (replay protection). With GRANT=
-- client_credentials, each request takes a JWT-SVID (one ES256 verification, one signature, a
-- credential.issue event) instead of an exchange.
local subject = "&subject_token=%7B%22sub%22%3A%22bench-initiator%22%7D" ..
  "&subject_token_type=urn%3Acustody%3Aparams%3Aoauth%3Atoken-type%3Ainitiator-assertion"
if os.getenv("SUBJECT") and os.getenv("SUBJECT") ~= "" then
  subject = "&subject_token=" .. os.getenv("SUBJECT") ..
    "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
end
local assertions_file = os.getenv("ASSERTIONS") or ""
local auth = "&client_secret=" .. (os.getenv("SECRET") or "")
if assertions_file ~= "" then auth = "" end
local body
if os.getenv("GRANT") == "client_credentials" then
  body = "grant_type=client_credentials&client_id=" .. os.getenv("CLIENT") .. auth ..
    "&audience=bench-gateway"
else
  body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
    "&client_id=" .. os.getenv("CLIENT") .. auth ..
    "&audience=bench-gateway&scope=tools%2Fread" ..
    subject ..
    "&actor_token=" .. os.getenv("SVID") ..
    "&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
end
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}

-- wrk's threads: each takes every n-th assertion, from its own offset.
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  if assertions_file == "" then return end
  mine = {}
  local i = 0
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  for line in io.lines(assertions_file) do
    if i % n == tid then table.insert(mine, line) end
    i = i + 1
  end
  next_assertion = 1
end

function request()
  if assertions_file == "" then return wrk.format("POST", "/oauth2/token", headers, body) end
  local a = mine[next_assertion] or "exhausted"
  next_assertion = next_assertion + 1
  return wrk.format("POST", "/oauth2/token", headers, body ..
    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
    "&client_assertion=" .. a)
end
