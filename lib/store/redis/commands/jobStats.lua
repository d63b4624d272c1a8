-- jobStats: one partition's exact counts per status, and per name its waiting and leased jobs and the
-- due time of its job due the longest. Names with neither leave the partition's names set (the store
-- read the set first, to declare their keys; a name added meanwhile stays for the next call).
-- KEYS (9 + 2 per name): the partition's status:Queued, status:Scheduled, status:InProgress,
--   status:Completed, status:Failed, status:Canceled, idempotency, idempotency-expiries, names; then per
--   name waiting:<name>, leases:<name>.
-- ARGV: now, then the names in KEYS order.
-- Returns {{count per status in JOB_STATUSES order}, {waiting, leased, due time of the head or false, ...
--   per name}}.
--- @include "prune"
local K = {
  Queued = KEYS[1], Scheduled = KEYS[2], InProgress = KEYS[3], Completed = KEYS[4], Failed = KEYS[5],
  Canceled = KEYS[6], idempotency = KEYS[7], idempotencyExpiries = KEYS[8], names = KEYS[9],
}
local FIXED_KEYS = 9
local now = tonumber(ARGV[1])

pruneTerminalJobs(K, now)
pruneIdempotencyKeys(K, now)
local counts = {}
for i = 1, 6 do counts[i] = redis.call('ZCARD', KEYS[i]) end
local perName = {}
for n = 1, (#KEYS - FIXED_KEYS) / 2 do
  local waitingKey, leasesKey = KEYS[FIXED_KEYS + 2 * n - 1], KEYS[FIXED_KEYS + 2 * n]
  local waiting, leased = redis.call('ZCARD', waitingKey), redis.call('ZCARD', leasesKey)
  local head = redis.call('ZRANGE', waitingKey, 0, 0, 'WITHSCORES')[2]
  if waiting == 0 and leased == 0 then redis.call('SREM', K.names, ARGV[1 + n]) end
  perName[#perName + 1] = waiting
  perName[#perName + 1] = leased
  perName[#perName + 1] = head or false
end
return { counts, perName }
