--- @include "job-status"
--- @include "waiting-entry"

-- Takes the job out of the indexes of its current status. K holds the script's declared keys: one per
-- status by its name (K.Queued ...), and K.started, K.waiting and K.leases of the job's name.
local function leaveStatus(K, job)
  redis.call('ZREM', K[job.status], job.id)
  if job.status == 'InProgress' then
    redis.call('ZREM', K.leases, job.id)
    redis.call('ZREM', K.started, job.id)
  elseif isWaiting(job.status) then
    redis.call('ZREM', K.waiting, waitingEntry(job))
  end
end

-- Takes the lease fields that a claim sets off the hash, with any further fields to clear in the same
-- HDEL. The one list of the lease fields, for every transition out of InProgress.
local function dropLease(key, ...)
  redis.call('HDEL', key, 'leaseToken', 'leaseExpiresAt', 'workerId', ...)
end
