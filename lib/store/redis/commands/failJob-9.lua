-- failJob: the attempt failed. Canceled when cancellation was requested, else Scheduled for a retry at
-- retryAt, or Failed for good when there is none.
-- KEYS: the partition's status:InProgress, status:Scheduled, status:Failed, status:Canceled, started,
--   idempotency-expiries; leases:<name>, waiting:<name>; the job's hash.
-- ARGV: the partition's prefix (its event channels'), partition, now, token, name, error JSON, retryAt ('' for none), completedTtlMs,
--   failedTtlMs.
-- Returns 'scheduled' | 'failed' | 'canceled' | 'lease-lost'.
--- @include "leased-job"
--- @include "finish"
local K = {
  InProgress = KEYS[1], Scheduled = KEYS[2], Failed = KEYS[3], Canceled = KEYS[4], started = KEYS[5],
  idempotencyExpiries = KEYS[6], leases = KEYS[7], waiting = KEYS[8], channels = ARGV[1],
}
local key = KEYS[9]
local partition, now, token, name, errorJson = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local retryAt, completedTtlMs, failedTtlMs = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])

local job = leasedJob(key, token, name)
if not job then return 'lease-lost' end
redis.call('HSET', key, 'error', errorJson)

if job.cancelRequested == '1' then
  finish(K, key, job, 'Canceled', now, completedTtlMs, nil)
  return 'canceled'
end
if not retryAt then
  finish(K, key, job, 'Failed', now, failedTtlMs, nil)
  return 'failed'
end

leaveStatus(K, job)
dropLease(key)
redis.call('HSET', key, 'status', 'Scheduled', 'lastUpdatedAt', now, 'retryDelayUntil', retryAt)
redis.call('HINCRBY', key, 'retryCount', 1)
redis.call('ZADD', K.Scheduled, now, job.id)
redis.call('ZADD', K.waiting, retryAt, waitingEntry(job))
publish(K.channels, { type = 'job-available', name = name, partition = partition, dueAt = retryAt })
return 'scheduled'
