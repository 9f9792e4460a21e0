-- wrk script: `wrk -t2 -c16 -d15s -s bench/api_load.lua URL -- <balance|purchase> <members file> <api key> <run id>`
-- The members file holds one member API id (a UUID) per line, of members the key's partner knows.
-- Each request goes to a spread-out member; each purchase has its own order reference and
-- Idempotency-Key. done() prints one JSON line the bench reads.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

function init(args)
  mode, key, run = args[1], args[3], args[4]
  ids = {}
  for line in io.lines(args[2]) do
    ids[#ids + 1] = line
  end
  members = #ids
  n = 0
  headers = {["Authorization"] = "Api-Key " .. key, ["Content-Type"] = "application/json"}
end

function request()
  n = n + 1
  local member = ids[1 + (thread_id * 7919 + n * 104729) % members]
  if mode == "balance" then
    return wrk.format("GET", "/api/v1/members/" .. member .. "/balance/", headers)
  end
  local reference = string.format("wrk-%s-%d-%d", run, thread_id, n)
  headers["Idempotency-Key"] = reference
  local body = string.format('{"member_id": "%s", "order_reference": "%s", "amount": "23.45", "currency": "EUR"}',
                             member, reference)
  return wrk.format("POST", "/api/v1/purchases/", headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('{"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p99_ms": %.2f, "non_2xx": %d, ' ..
                         '"socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
