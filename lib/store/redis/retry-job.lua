-- retryJob: an operator's retry of a Failed or Canceled job. It is Queued again, due at once and ordered
-- as a new submission, with retryCount and recoveryCount back at 0 (a fresh attempt budget). The last
-- error stays until the next attempt ends; result, progress and the last run's times go. The hash no
-- longer expires, and the idempotency key stays with the job.
-- KEYS: store keys, then the job's hash. ARGV: now.
-- Returns {'requeued' | 'not-retryable', <fields>} | {'not-found'}.
local key = KEYS[STORE_KEY_COUNT + 1]
local now = tonumber(ARGV[1])

pruneExpired(now)
local job = readJob(key)
if not job then return { 'not-found' } end
if job.status ~= 'Failed' and job.status ~= 'Canceled' then
  return { 'not-retryable', redis.call('HGETALL', key) }
end

redis.call('ZREM', statusIndex(job.status), job.id)
redis.call('PERSIST', key)
if job.idempotencyDigest then
  local holder = redis.call('HGET', IDEMPOTENCY, job.idempotencyDigest)
  if holder == false or holder == job.id then
    redis.call('HSET', IDEMPOTENCY, job.idempotencyDigest, job.id)
    redis.call('ZREM', IDEMPOTENCY_EXPIRIES, job.idempotencyDigest)
  else
    -- The key went with this job's retention and now names a newer job: this one keeps no key.
    redis.call('HDEL', key, 'idempotencyDigest')
  end
end
job.seq = tostring(redis.call('INCR', SEQUENCE))
redis.call('HDEL', key, 'completedAt', 'startedAt', 'retryCount', 'recoveryCount', 'cancelRequested', 'progress', 'result')
redis.call('HSET', key, 'status', 'Queued', 'seq', job.seq, 'lastUpdatedAt', now)
redis.call('ZADD', QUEUED_INDEX, job.seq, job.id)
redis.call('ZADD', WAITING, now, waitingEntry(job))
publish({ type = 'job-available' })
return { 'requeued', redis.call('HGETALL', key) }
