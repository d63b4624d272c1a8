-- releaseJob: hands a claimed job back (shutdown): Queued and due at once, the attempt not counted;
-- Canceled instead when cancellation was requested.
-- KEYS: store keys, then the job's hash. ARGV: now, token, completedTtlMs.
-- Returns 'released' | 'canceled' | 'lease-lost'.
local key = KEYS[STORE_KEY_COUNT + 1]
local now, token, completedTtlMs = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])

local job = leasedJob(key, token)
if not job then return 'lease-lost' end
if job.cancelRequested == '1' then
  finish(key, job, 'Canceled', now, completedTtlMs)
  return 'canceled'
end
requeue(key, job, now)
publish({ type = 'job-available' })
return 'released'
