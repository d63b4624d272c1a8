--- @include "leave-status"
--- @include "publish"

-- Any live status -> Completed, Failed or Canceled. The job, and its idempotency key, stay readable for
-- ttlMs: the hash expires by itself, the index entries go with the pruning. Further fields to clear may
-- follow ttlMs, so that they go in the same HDEL. K.channels is the partition's prefix (publish).
local function finish(K, key, job, status, now, ttlMs, ...)
  leaveStatus(K, job)
  dropLease(key, 'retryDelayUntil', 'seq', 'lastUpdatedAt', ...)
  redis.call('HSET', key, 'status', status, 'completedAt', now)
  redis.call('PEXPIRE', key, ttlMs)
  local expiresAt = now + ttlMs
  redis.call('ZADD', K[status], expiresAt, job.id)
  if job.idempotencyDigest then
    redis.call('ZADD', K.idempotencyExpiries, expiresAt, job.idempotencyDigest)
  end
  publish(K.channels, { type = 'job-finished', jobId = job.id })
end
