-- wrk script: POST /v1/actions:authorize (call_tool github/get_issue), each request with the next
-- of TOKENS (env: Custody session tokens separated by spaces), so the load is spread over several
-- sessions as many agents would spread it (each call is counted on its session's row).
local tokens = {}
for t in string.gmatch(os.getenv("TOKENS") or "", "%S+") do tokens[#tokens + 1] = t end
if #tokens == 0 then error("authorize_bench.lua: TOKENS is empty") end
local body = '{"action":"call_tool","target":{"server":"github","tool":"get_issue"}}'
local n = 0
local offset = 0

function setup(thread)
  thread:set("offset", offset)
  offset = offset + 1
end

function request()
  n = n + 1
  local t = tokens[((n + offset) % #tokens) + 1]
  return wrk.format("POST", "/v1/actions:authorize",
                    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. t}, body)
end
