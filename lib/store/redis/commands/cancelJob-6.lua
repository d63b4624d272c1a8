-- cancelJob: a waiting job is Canceled at once; for an InProgress one, cancellation is requested and
-- its worker told (here, and at its next lease renewal). The store read the job's name first, to
-- declare that name's keys; when the job is no longer of that name (gone and submitted again under
-- another), the answer is 'changed' and the store reads again.
-- KEYS: the partition's status:Queued, status:Scheduled, status:Canceled, idempotency-expiries;
--   waiting:<name>; the job's hash. (An InProgress job keeps its lease: its worker finishes it.)
-- ARGV: the partition's prefix (its event channels'), now, completedTtlMs, name.
-- Returns {'canceled' | 'cancel-requested' | 'already-terminal', <fields>} | {'not-found'} | {'changed'}.
--- @include "read-job"
--- @include "finish"
local K = {
  Queued = KEYS[1], Scheduled = KEYS[2], Canceled = KEYS[3], idempotencyExpiries = KEYS[4], waiting = KEYS[5],
  channels = ARGV[1],
}
local key = KEYS[6]
local now, completedTtlMs, name = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]

local job = readJob(key)
if not job then return { 'not-found' } end
if (job.name or '') ~= name then return { 'changed' } end

local outcome
if isTerminal(job.status) then
  outcome = 'already-terminal'
elseif job.status == 'InProgress' then
  if job.cancelRequested ~= '1' then
    redis.call('HSET', key, 'cancelRequested', '1', 'lastUpdatedAt', now)
    publish(K.channels, { type = 'cancel-requested', jobId = job.id })
  end
  outcome = 'cancel-requested'
else
  finish(K, key, job, 'Canceled', now, completedTtlMs, nil)
  outcome = 'canceled'
end
return { outcome, redis.call('HGETALL', key) }
