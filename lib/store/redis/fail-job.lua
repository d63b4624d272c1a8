-- failJob: the attempt failed. Canceled when cancellation was requested, else Scheduled for a retry at
-- retryAt, or Failed for good when there is none.
-- KEYS: store keys, then the job's hash.
-- ARGV: now, token, error JSON, retryAt ('' for none), completedTtlMs, failedTtlMs.
-- Returns 'scheduled' | 'failed' | 'canceled' | 'lease-lost'.
local key = KEYS[STORE_KEY_COUNT + 1]
local now, token, errorJson = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local retryAt, completedTtlMs, failedTtlMs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local job = leasedJob(key, token)
if not job then return 'lease-lost' end
redis.call('HSET', key, 'error', errorJson)

if job.cancelRequested == '1' then
  finish(key, job, 'Canceled', now, completedTtlMs)
  return 'canceled'
end
if not retryAt then
  finish(key, job, 'Failed', now, failedTtlMs)
  return 'failed'
end

leaveStatus(job)
dropLease(key)
redis.call('HSET', key, 'status', 'Scheduled', 'lastUpdatedAt', now, 'retryDelayUntil', retryAt)
redis.call('HINCRBY', key, 'retryCount', 1)
redis.call('ZADD', SCHEDULED_INDEX, job.seq, job.id)
redis.call('ZADD', WAITING, retryAt, waitingEntry(job))
publish({ type = 'job-available', dueAt = retryAt })
return 'scheduled'
