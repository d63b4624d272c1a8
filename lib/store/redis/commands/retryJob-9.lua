-- retryJob: an operator's retry of a Failed or Canceled job. It is Queued again, due at once and ordered
-- as a new submission, with retryCount and recoveryCount back at 0 (a fresh attempt budget). The last
-- error stays until the next attempt ends; result, progress and the last run's times go. The hash no
-- longer expires, and the idempotency key stays with the job. The store read the job's name first, to
-- declare that name's keys; 'changed' when the job is no longer of that name, and the store reads again.
-- KEYS: the partition's status:Failed, status:Canceled, status:Queued, idempotency,
--   idempotency-expiries, sequence, names; waiting:<name>; the job's hash.
-- ARGV: the partition's prefix (its event channels'), partition, now, name, sequence number ('' to take the partition's next).
-- Returns {'requeued' | 'not-retryable', <fields>} | {'not-found'} | {'changed'}.
--- @include "read-job"
--- @include "waiting-entry"
--- @include "publish"
local K = {
  Failed = KEYS[1], Canceled = KEYS[2], Queued = KEYS[3], idempotency = KEYS[4], idempotencyExpiries = KEYS[5],
  sequence = KEYS[6], names = KEYS[7], waiting = KEYS[8], channels = ARGV[1],
}
local key = KEYS[9]
local partition, now, name, seq = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]

local job = readJob(key)
if not job then return { 'not-found' } end
if (job.name or '') ~= name then return { 'changed' } end
if job.status ~= 'Failed' and job.status ~= 'Canceled' then
  return { 'not-retryable', redis.call('HGETALL', key) }
end

redis.call('ZREM', K[job.status], job.id)
redis.call('PERSIST', key)
if job.idempotencyDigest then
  local holder = redis.call('HGET', K.idempotency, job.idempotencyDigest)
  if holder == false or holder == job.id then
    redis.call('HSET', K.idempotency, job.idempotencyDigest, job.id)
    redis.call('ZREM', K.idempotencyExpiries, job.idempotencyDigest)
  else
    -- The key went with this job's retention and now names a newer job: this one keeps no key.
    redis.call('HDEL', key, 'idempotencyDigest')
  end
end
job.seq = seq ~= '' and seq or string.format('%d', redis.call('INCR', K.sequence)) -- %d: see createJobs.lua
redis.call('HDEL', key, 'completedAt', 'startedAt', 'retryCount', 'recoveryCount', 'cancelRequested', 'progress', 'result')
redis.call('HSET', key, 'status', 'Queued', 'seq', job.seq, 'lastUpdatedAt', now)
redis.call('ZADD', K.Queued, now, job.id)
redis.call('ZADD', K.waiting, now, waitingEntry(job))
redis.call('SADD', K.names, name)
publish(K.channels, { type = 'job-available', name = name, partition = partition })
return { 'requeued', redis.call('HGETALL', key) }
