-- wrk script: RFC 8693 token exchanges against POST /oauth2/token. Each request starts a root
-- session for an asserted initiator: client_secret authentication, the actor JWT-SVID verified
-- (ES256), the access token signed (ES256), its session stored and its session.start event
-- recorded in the ledger before the answer. Env: CLIENT, SECRET, SVID.
local body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
  "&client_id=" .. os.getenv("CLIENT") ..
  "&client_secret=" .. os.getenv("SECRET") ..
  "&audience=bench-gateway&scope=tools%2Fread" ..
  "&subject_token=%7B%22sub%22%3A%22bench-initiator%22%7D" ..
  "&subject_token_type=urn%3Acustody%3Aparams%3Aoauth%3Atoken-type%3Ainitiator-assertion" ..
  "&actor_token=" .. os.getenv("SVID") ..
  "&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"

function request()
  return wrk.format("POST", "/oauth2/token",
                    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
