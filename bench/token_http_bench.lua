-- wrk script: RFC 8693 token exchanges against POST /oauth2/token. Without SUBJECT, each request
-- starts a root session for an asserted initiator: client_secret authentication, the actor
-- JWT-SVID verified (ES256), the access token signed (ES256), its session stored and its
-- session.start event recorded in the ledger before the answer. With SUBJECT (a Custody access
-- token), each request delegates from that token's session instead: its signature verified too
-- (two ES256 verifications and one signature), its session and revocation state read, and a
-- delegation event recorded. Env: CLIENT, SECRET, SVID, SUBJECT (optional).
local subject = "&subject_token=%7B%22sub%22%3A%22bench-initiator%22%7D" ..
  "&subject_token_type=urn%3Acustody%3Aparams%3Aoauth%3Atoken-type%3Ainitiator-assertion"
if os.getenv("SUBJECT") and os.getenv("SUBJECT") ~= "" then
  subject = "&subject_token=" .. os.getenv("SUBJECT") ..
    "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
end
local body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
  "&client_id=" .. os.getenv("CLIENT") ..
  "&client_secret=" .. os.getenv("SECRET") ..
  "&audience=bench-gateway&scope=tools%2Fread" ..
  subject ..
  "&actor_token=" .. os.getenv("SVID") ..
  "&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"

function request()
  return wrk.format("POST", "/oauth2/token",
                    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
