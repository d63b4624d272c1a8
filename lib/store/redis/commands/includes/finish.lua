--- @include "leave-status"
--- @include "publish"

-- Any live status -> Completed, Failed or Canceled. The job, and its idempotency key, stay readable for
-- ttlMs: the hash expires by itself, the index entries go with the pruning. `set` (a list of fields and
-- values, or nil) goes in the same HSET as the status; further fields to clear may follow it, so that
-- they go in the same HDEL. now and ttlMs may be numbers or the argument strings they came as (strings
-- are sent as they are). K.channels is the partition's prefix (publish).
local function finish(K, key, job, status, now, ttlMs, set, ...)
  leaveStatus(K, job)
  dropLease(key, 'retryDelayUntil', 'seq', 'lastUpdatedAt', ...)
  if set then
    redis.call('HSET', key, 'status', status, 'completedAt', now, unpack(set))
  else
    redis.call('HSET', key, 'status', status, 'completedAt', now)
  end
  redis.call('PEXPIRE', key, ttlMs)
  local expiresAt = now + ttlMs
  redis.call('ZADD', K[status], expiresAt, job.id)
  if job.idempotencyDigest then
    redis.call('ZADD', K.idempotencyExpiries, expiresAt, job.idempotencyDigest)
  end
  publish(K.channels, { type = 'job-finished', jobId = job.id })
end
