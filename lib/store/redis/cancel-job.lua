-- cancelJob: a waiting job is Canceled at once; for an InProgress one, cancellation is requested and
-- its worker told (here, and at its next lease renewal).
-- KEYS: store keys, then the job's hash. ARGV: now, completedTtlMs.
-- Returns {'canceled' | 'cancel-requested' | 'already-terminal', <fields>} | {'not-found'}.
local key = KEYS[STORE_KEY_COUNT + 1]
local now, completedTtlMs = tonumber(ARGV[1]), tonumber(ARGV[2])

pruneExpired(now)
local job = readJob(key)
if not job then return { 'not-found' } end

local outcome
if isTerminal(job.status) then
  outcome = 'already-terminal'
elseif job.status == 'InProgress' then
  if job.cancelRequested ~= '1' then
    redis.call('HSET', key, 'cancelRequested', '1', 'lastUpdatedAt', now)
    publish({ type = 'cancel-requested', jobId = job.id })
  end
  outcome = 'cancel-requested'
else
  finish(key, job, 'Canceled', now, completedTtlMs)
  outcome = 'canceled'
end
return { outcome, redis.call('HGETALL', key) }
