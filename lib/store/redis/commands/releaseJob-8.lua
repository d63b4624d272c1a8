-- releaseJob: hands a claimed job back (shutdown): Queued and due at once, the attempt not counted;
-- Canceled instead when cancellation was requested.
-- KEYS: the partition's status:InProgress, status:Queued, status:Canceled, started,
--   idempotency-expiries; leases:<name>, waiting:<name>; the job's hash.
-- ARGV: the partition's prefix (its event channels'), partition, now, token, name, completedTtlMs, the due time of the name's head in
--   the other partitions ('' for none).
-- Returns 'released' | 'canceled' | 'lease-lost'.
--- @include "leased-job"
--- @include "finish"
--- @include "requeue"
local K = {
  InProgress = KEYS[1], Queued = KEYS[2], Canceled = KEYS[3], started = KEYS[4], idempotencyExpiries = KEYS[5],
  leases = KEYS[6], waiting = KEYS[7], channels = ARGV[1],
}
local key = KEYS[8]
local partition, now, token, name, completedTtlMs = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])

local job = leasedJob(key, token, name)
if not job then return 'lease-lost' end
if job.cancelRequested == '1' then
  finish(K, key, job, 'Canceled', now, completedTtlMs, nil)
  return 'canceled'
end
requeue(K, key, job, now, ARGV[7])
publish(K.channels, { type = 'job-available', name = name, partition = partition })
return 'released'
