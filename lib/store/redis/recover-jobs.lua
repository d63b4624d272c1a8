-- recoverJobs: one batch of the recovery sweep, under the sweep lock.
-- Takes back InProgress jobs whose lease expired or that started at or before now - maxInProgressMs:
-- Canceled when cancellation was requested, Failed when taken back maxRecoveries times already, else
-- Queued at once with recoveryCount + 1. Drops lease and queue entries of missing jobs or keys that are
-- not hashes; fails unreadable job hashes with JOB_UNREADABLE (failUnreadable). Both count as removed.
-- KEYS: store keys.
-- ARGV: now, maxInProgressMs, maxRecoveries, lockMs, lock token, completedTtlMs, failedTtlMs, batch size,
--       the JOB_RECOVERY_EXHAUSTED and JOB_UNREADABLE error codes.
-- Returns false when another sweeper holds the lock, else
-- {requeued ids, exhausted ids, canceled ids, removed entries, 1 when more may be left else 0}.
local now, maxInProgressMs, maxRecoveries = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lockMs, lockToken = tonumber(ARGV[4]), ARGV[5]
local completedTtlMs, failedTtlMs, batchSize, exhaustedCode = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local unreadableCode = ARGV[10]

-- readJob, with an unreadable hash failed on the spot (nil is returned for it as for a missing job).
local function readOrFail(key, id)
  local job, _, cause = readJob(key)
  if cause and cause ~= 'the key is not a hash' then failUnreadable(key, id, cause, now, failedTtlMs, unreadableCode) end
  return job
end

-- The lock holds "<token> <held until>" and is judged by the caller's clock, like every time here; its
-- PX only keeps a dead sweeper's lock from lingering. A later batch of the same sweep passes the same token.
local function acquireLock()
  local holder = redis.call('GET', RECOVERY_LOCK)
  if holder then
    local token, heldUntil = string.match(holder, '^(%S+) (%S+)$')
    if token ~= lockToken and tonumber(heldUntil) and tonumber(heldUntil) > now then return false end
  end
  redis.call('SET', RECOVERY_LOCK, lockToken .. ' ' .. string.format('%d', now + lockMs), 'PX', math.max(math.ceil(lockMs), 1))
  return true
end

-- Ids in either index past its limit, each once.
local function dueForRecovery()
  local expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, batchSize)
  local overdue = redis.call('ZRANGEBYSCORE', STARTED, '-inf', now - maxInProgressMs, 'LIMIT', 0, batchSize)
  local ids, seen = {}, {}
  for _, list in ipairs({ expired, overdue }) do
    for _, id in ipairs(list) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  return ids, #expired == batchSize or #overdue == batchSize
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

-- Like the memory store, looks at the head of the queue only: claims drop bad entries further back.
local function dropBadQueueHead()
  local removed = 0
  while removed < batchSize do
    local head = redis.call('ZRANGE', WAITING, 0, 0)[1]
    if not head then break end
    local id = idOfWaitingEntry(head)
    local job = id and readOrFail(jobKey(id), id)
    if job and isWaiting(job.status) then break end
    dropWaitingEntry(head, id, job)
    removed = removed + 1
  end
  return removed
end

if not acquireLock() then return false end
pruneExpired(now)

local requeued, exhausted, canceled, removed = {}, {}, {}, 0
local ids, more = dueForRecovery()
for _, id in ipairs(ids) do
  local key = jobKey(id)
  local job = readOrFail(key, id)
  if not job or job.status ~= 'InProgress' then
    redis.call('ZREM', LEASES, id)
    redis.call('ZREM', STARTED, id)
    redis.call('ZREM', IN_PROGRESS_INDEX, id)
    removed = removed + 1
  elseif job.cancelRequested == '1' then
    finish(key, job, 'Canceled', now, completedTtlMs)
    canceled[#canceled + 1] = id
  elseif recoveriesOf(job) >= maxRecoveries then
    redis.call('HSET', key, 'error', exhaustedError(job))
    finish(key, job, 'Failed', now, failedTtlMs)
    exhausted[#exhausted + 1] = id
  else
    redis.call('HINCRBY', key, 'recoveryCount', 1)
    requeue(key, job, now)
    requeued[#requeued + 1] = id
  end
end
removed = removed + dropBadQueueHead()

if #requeued > 0 then publish({ type = 'job-available' }) end
return { requeued, exhausted, canceled, removed, more and 1 or 0 }
