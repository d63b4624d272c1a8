-- renewLeases: extends every lease still held in one partition, in one round trip.
-- KEYS (2 per lease): the job's hash and leases:<its name>.
-- ARGV: now, leaseMs, then per lease (in KEYS order) its job id, token and name.
-- Returns {lost job ids, ids of held jobs whose cancellation was requested}.
--- @include "leased-job"
local now, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local LEASES_FROM = 3
local expiresAt = now + leaseMs

local lost, cancelRequested = {}, {}
for i = 1, #KEYS / 2 do
  local key, leasesKey = KEYS[2 * i - 1], KEYS[2 * i]
  local at = LEASES_FROM + 3 * (i - 1)
  local id, token, name = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  local job = leasedJob(key, token, name)
  if job then
    redis.call('HSET', key, 'leaseExpiresAt', expiresAt)
    redis.call('ZADD', leasesKey, expiresAt, id)
    if job.cancelRequested == '1' then cancelRequested[#cancelRequested + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return { lost, cancelRequested }
