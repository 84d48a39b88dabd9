-- wrk script: POST /v1/ledger/entries with distinct events, BATCH per request (env, default 1).
local token = os.getenv("TOKEN")
local batch = tonumber(os.getenv("BATCH") or "1")
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

local function event()
  counter = counter + 1
  return string.format('{"kind":"bench","thread":%d,"n":%d,"pad":"%s"}', thread_id, counter,
                       string.rep("x", 64))
end

function request()
  local body
  if batch == 1 then
    body = event()
  else
    local parts = {}
    for i = 1, batch do parts[i] = event() end
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer " .. token}, body)
end
