-- recoverJobs: one batch of the recovery sweep in one partition, under the partition's sweep lock.
-- The store read the candidates first (expired leases:<name> entries, overdue started entries) and
-- their names; this script checks each again, as it may have changed meanwhile (renewed, finished):
-- an InProgress job whose lease expired or that started at or before now - maxInProgressMs is
-- Canceled when cancellation was requested, Failed when taken back maxRecoveries times already, else
-- Queued at once with recoveryCount + 1. Entries of missing jobs or of jobs no longer InProgress are
-- dropped; unreadable job hashes are failed with JOB_UNREADABLE. Both count as removed. A job whose
-- name is not the one read (submitted again meanwhile) is left for the next sweep.
-- KEYS (10 + 2 per name + 1 per job): the partition's recovery-lock, started, status:Queued,
--   status:InProgress, status:Completed, status:Failed, status:Canceled, idempotency,
--   idempotency-expiries, status:Scheduled; then per name waiting:<name>, leases:<name>; then per job its hash.
-- ARGV: the partition's prefix (its event channels'), partition, now, maxInProgressMs, maxRecoveries, lockMs, lock token,
--   completedTtlMs, failedTtlMs, the JOB_RECOVERY_EXHAUSTED and JOB_UNREADABLE error codes, the number
--   of names, then per job (in KEYS order) its id and the number of its name (0 when it has none),
--   then the names, then per name the due time of its head in the other partitions ('' for none).
-- Returns false when another sweeper holds the lock, else {requeued ids, exhausted ids, canceled ids,
--   removed entries}.
--- @include "read-job"
--- @include "finish"
--- @include "requeue"
--- @include "fail-unreadable"
--- @include "prune"
local K = {
  started = KEYS[2], Queued = KEYS[3], InProgress = KEYS[4], Completed = KEYS[5], Failed = KEYS[6],
  Canceled = KEYS[7], idempotency = KEYS[8], idempotencyExpiries = KEYS[9], Scheduled = KEYS[10],
  channels = ARGV[1],
}
local LOCK, FIXED_KEYS = KEYS[1], 10
local partition, now, maxInProgressMs, maxRecoveries = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lockMs, lockToken, completedTtlMs, failedTtlMs = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local exhaustedCode, unreadableCode, nameCount = ARGV[10], ARGV[11], tonumber(ARGV[12])
local JOBS_FROM = 13

-- The lock holds "<token> <held until>" and is judged by the caller's clock, like every time here; its
-- PX only keeps a dead sweeper's lock from lingering. A later batch of the same sweep passes the same token.
local function acquireLock()
  local holder = redis.call('GET', LOCK)
  if holder then
    local token, heldUntil = string.match(holder, '^(%S+) (%S+)$')
    if token ~= lockToken and tonumber(heldUntil) and tonumber(heldUntil) > now then return false end
  end
  redis.call('SET', LOCK, lockToken .. ' ' .. string.format('%d', now + lockMs), 'PX', math.max(math.ceil(lockMs), 1))
  return true
end

-- recoveryCount is absent while it is 0.
local function recoveriesOf(job)
  return tonumber(job.recoveryCount or '0')
end

local function exhaustedError(job)
  return cjson.encode({
    code = exhaustedCode,
    message = 'Job ' .. job.id .. ' was taken back from a dead or hung worker ' .. recoveriesOf(job) ..
      ' time(s), the limit set by recovery.maximumRetries; it is failed so that it cannot loop forever.',
  })
end

local function dueForRecovery(job)
  return (tonumber(job.leaseExpiresAt) or 0) <= now or (tonumber(job.startedAt) or 0) <= now - maxInProgressMs
end

if not acquireLock() then return false end
pruneTerminalJobs(K, now)
pruneIdempotencyKeys(K, now)

local requeued, exhausted, canceled, removed, announced = {}, {}, {}, 0, {}
local jobsFrom = FIXED_KEYS + 2 * nameCount
for i = 1, #KEYS - jobsFrom do
  local key = KEYS[jobsFrom + i]
  local id, n = ARGV[JOBS_FROM + 2 * (i - 1)], tonumber(ARGV[JOBS_FROM + 2 * (i - 1) + 1])
  local name = n > 0 and ARGV[JOBS_FROM + 2 * (#KEYS - jobsFrom) + n - 1] or nil
  K.waiting = n > 0 and KEYS[FIXED_KEYS + 2 * n - 1] or nil
  K.leases = n > 0 and KEYS[FIXED_KEYS + 2 * n] or nil
  local job, _, cause = readJob(key)
  if cause and cause ~= 'the key is not a hash' then
    failUnreadable(K, key, id, cause, now, failedTtlMs, unreadableCode)
    removed = removed + 1
  elseif not job or job.status ~= 'InProgress' then
    if K.leases then redis.call('ZREM', K.leases, id) end
    redis.call('ZREM', K.started, id)
    redis.call('ZREM', K.InProgress, id)
    removed = removed + 1
  elseif not job.name then
    -- No name: no queue to put it back in, and a GET cannot read it; failed visibly, not left leased.
    failUnreadable(K, key, id, "field 'name' is missing", now, failedTtlMs, unreadableCode)
    removed = removed + 1
  elseif job.name == name and dueForRecovery(job) then
    if job.cancelRequested == '1' then
      finish(K, key, job, 'Canceled', now, completedTtlMs, nil)
      canceled[#canceled + 1] = id
    elseif recoveriesOf(job) >= maxRecoveries then
      redis.call('HSET', key, 'error', exhaustedError(job))
      finish(K, key, job, 'Failed', now, failedTtlMs, nil)
      exhausted[#exhausted + 1] = id
    else
      redis.call('HINCRBY', key, 'recoveryCount', 1)
      requeue(K, key, job, now, ARGV[JOBS_FROM + 2 * (#KEYS - jobsFrom) + nameCount + n - 1])
      requeued[#requeued + 1] = id
      -- One wake-up per name is enough.
      if not announced[name] then
        announced[name] = true
        publish(K.channels, { type = 'job-available', name = name, partition = partition })
      end
    end
  end
end
return { requeued, exhausted, canceled, removed }
