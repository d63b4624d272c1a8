-- claimDueJobs: leases up to `limit` due jobs, in due-time then submission order, in one round trip.
-- KEYS: store keys.
-- ARGV: now, leaseMs, workerId, maxConcurrentJobs ('' for none), then one fresh lease token per slot.
-- Returns {<fields>, ...}: the claimed jobs, the i-th under the i-th token, so the worker needs no second
-- read. Left out, as the caller knows them: the fields the claim set (status, startedAt, lastUpdatedAt,
-- workerId, leaseExpiresAt).
local now, leaseMs, workerId, maxConcurrentJobs = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local TOKENS_FROM = 5

local limit = #ARGV - TOKENS_FROM + 1
if maxConcurrentJobs ~= '' then
  limit = math.min(limit, tonumber(maxConcurrentJobs) - redis.call('ZCARD', IN_PROGRESS_INDEX))
end

local claimed = {}
-- Every entry looked at leaves the waiting set (claimed or dropped), so the loop always ends.
while #claimed < limit do
  local entries = redis.call('ZRANGEBYSCORE', WAITING, '-inf', now, 'LIMIT', 0, limit - #claimed)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local id = idOfWaitingEntry(entry)
    local key = id and jobKey(id)
    local job = key and readJob(key)
    if job and isWaiting(job.status) then
      local token = ARGV[TOKENS_FROM + #claimed]
      startLease(key, job, token, workerId, now, leaseMs)
      job.status, job.startedAt, job.lastUpdatedAt, job.workerId, job.leaseExpiresAt = nil, nil, nil, nil, nil
      claimed[#claimed + 1] = flatten(job)
    else
      dropWaitingEntry(entry, id, job)
    end
  end
end
return claimed
