--!df flags=allow-undeclared-keys
-- completeJobs: attempts that succeeded, one or more in one partition in one round trip (the store
-- sends the completions of one moment together), then, when asked, a claim in the same partition that
-- rides on them (a worker's next jobs: one round trip for both). Completion wins over a cancellation
-- requested meanwhile. The claim touches job hashes it does not declare (see claim-due.lua; hence the
-- Dragonfly flag above).
-- KEYS (4 + 2 per completion [+ 3 + 2 per name]): the partition's status:InProgress, status:Completed,
--   started, idempotency-expiries; then per completion its job's hash and leases:<its name>; then, with
--   a claim, the partition's status:Queued, status:Scheduled, status:Failed and per name waiting:<name>,
--   leases:<name>.
-- ARGV: the partition's prefix (its event channels'), the number of completions, then per completion,
--   in KEYS order: 6, now, token, name, result JSON ('' for null), completedTtlMs, dropPayload ('1'
--   with retention.dropPayloadOnFinish, else ''); then, with a claim, its arguments as claimJobs takes
--   them after the prefix (claimArgs in claim-due.lua).
-- Returns per completion 'completed' | 'lease-lost' | 'error:<message>'; with a claim,
--   {<those outcomes>, <claimDue's answer, or 'error:<message>' when the claim failed>}.
--- @include "leased-job"
--- @include "finish"
--- @include "claim-due"
local K = {
  InProgress = KEYS[1], Completed = KEYS[2], started = KEYS[3], idempotencyExpiries = KEYS[4], channels = ARGV[1],
}
local FIXED_KEYS = 4
local count = tonumber(ARGV[2])

local function complete(key, leasesKey, now, token, name, result, completedTtlMs, dropPayload)
  local job = leasedJob(key, token, name)
  if not job then return 'lease-lost' end
  K.leases = leasesKey
  -- The payload stays a field (JSON null): a job without one is unreadable.
  if dropPayload == '1' then
    redis.call('HSET', key, 'payload', 'null')
    redis.call('HDEL', key, 'headers', 'queryParams')
  end
  -- A null result is an absent field; an earlier attempt's error goes (finish clears both with its HDEL).
  if result == '' then
    finish(K, key, job, 'Completed', now, completedTtlMs, nil, 'result', 'error')
  else
    finish(K, key, job, 'Completed', now, completedTtlMs, { 'result', result }, 'error')
  end
  return 'completed'
end

-- A Lua error in one completion (a key of the wrong type, tampered with) answers 'error:<message>' for
-- it and leaves the others to run.
local outcomes = {}
local from = 3
for i = 1, count do
  local at = FIXED_KEYS + 2 * (i - 1)
  local a = from + 1
  -- now and completedTtlMs stay strings: finish sends them as they are.
  local ok, outcome = pcall(complete, KEYS[at + 1], KEYS[at + 2], ARGV[a], ARGV[a + 1], ARGV[a + 2],
    ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
  outcomes[i] = ok and outcome or ('error:' .. (type(outcome) == 'table' and tostring(outcome.err) or tostring(outcome)))
  from = from + 1 + tonumber(ARGV[from])
end
if from > #ARGV then return outcomes end
-- The claim's Lua error (an index key of the wrong type, tampered with) is its own: the completions
-- above were written and are answered as such.
local claimKeysFrom = FIXED_KEYS + 2 * count + 1
K.Queued, K.Scheduled, K.Failed = KEYS[claimKeysFrom], KEYS[claimKeysFrom + 1], KEYS[claimKeysFrom + 2]
local ok, claim = pcall(function() return claimDue(K, claimArgs(claimKeysFrom + 3, from)) end)
if not ok then claim = 'error:' .. (type(claim) == 'table' and tostring(claim.err) or tostring(claim)) end
return { outcomes, claim }
