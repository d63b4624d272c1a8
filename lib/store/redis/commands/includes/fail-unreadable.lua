--- @include "leave-status"
--- @include "publish"

-- A job hash the scripts cannot handle (changed outside the store) is failed where it is, visibly:
-- Failed with `code`, out of the live indexes the caller declared (K.Queued, K.Scheduled, K.InProgress,
-- K.started, and K.leases of the name it was found under) and into K.Failed, expiring after failedTtlMs,
-- so that it is neither orphaned (no TTL, counted nowhere) nor handed to a handler. Its other fields
-- stay for inspection; a GET shows it (the codec reads such a job leniently).
local function failUnreadable(K, key, id, cause, now, failedTtlMs, code)
  -- Not ipairs: K.leases is absent when the job's name is unknown, and ipairs stops at a hole.
  for _, index in pairs({ K.Queued, K.Scheduled, K.InProgress, K.leases, K.started }) do
    redis.call('ZREM', index, id)
  end
  dropLease(key, 'retryDelayUntil', 'seq', 'lastUpdatedAt')
  local message = 'Job ' .. id .. ' cannot be read from Redis (' .. cause .. '): its hash was changed' ..
    ' outside the job store, so it was failed instead of run. Submit it again, under a new idempotency' ..
    ' key if it had one.'
  redis.call('HSET', key, 'id', id, 'status', 'Failed', 'completedAt', now,
    'error', cjson.encode({ code = code, message = message }))
  redis.call('PEXPIRE', key, failedTtlMs)
  local expiresAt = now + failedTtlMs
  redis.call('ZADD', K.Failed, expiresAt, id)
  local digest = redis.call('HGET', key, 'idempotencyDigest')
  if digest then redis.call('ZADD', K.idempotencyExpiries, expiresAt, digest) end
  publish(K.channels, { type = 'job-finished', jobId = id })
  return message
end
