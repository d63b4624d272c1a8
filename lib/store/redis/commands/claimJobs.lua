--!df flags=allow-undeclared-keys
-- claimJobs: leases up to `limit` due jobs of the given names in one partition, in due-time then
-- submission order (a merge of the names' queue heads), in one round trip.
-- The one script that touches keys it does not declare: the hashes of the jobs it pops, built from the
-- declared keys' prefix. It cannot know them before it pops (a claim that first read candidates and
-- then declared them cost 30% of the throughput, and races other claims); BullMQ does the same.
-- Dragonfly's flag line above allows it there; on Redis Cluster the keys share the declared slot.
-- KEYS (6 + 2 per name): the partition's started, status:Queued, status:Scheduled, status:InProgress,
--   status:Failed, idempotency-expiries; then per name waiting:<name>, leases:<name>.
-- ARGV: the partition's prefix (its event channels'), now, leaseMs, workerId, concurrency cap ('' for none; maxConcurrentJobs less
--   the other partitions' InProgress jobs), failedTtlMs, the JOB_UNREADABLE error code, the number of
--   names, '1' to be told whether due jobs are left ('' not to: one partition needs no answer), then
--   one fresh lease token per slot.
-- Returns {{<values>, ...}, {<id>, <cause>, <'1' when failed, '0' when dropped>, ...}, <left>}: the
--   claimed jobs, the i-th under the i-th token, so the worker needs no second read; then the
--   unreadable jobs met on the way (see failUnreadable), which do not count against the limit; then,
--   when asked, 1 when a job of these names is still due here, else 0 (with several partitions, the
--   store stops visiting a partition only on a 0: a short claim may mean that a concurrent claim took
--   jobs, not that none are left). Each job's values come in a
--   fixed order, nil for an absent field (redis-job-codec.ts: CLAIMED_JOB_FIELDS). Left out, as the
--   caller knows them: the fields the claim sets (status, startedAt, lastUpdatedAt, workerId,
--   leaseExpiresAt) and clears (retryDelayUntil).
--- @include "read-job"
--- @include "fail-unreadable"
local K = {
  started = KEYS[1], Queued = KEYS[2], Scheduled = KEYS[3], InProgress = KEYS[4], Failed = KEYS[5],
  idempotencyExpiries = KEYS[6], channels = ARGV[1],
}
local FIXED_KEYS = 6
local now, leaseMs, workerId, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local failedTtlMs, unreadableCode, nameCount = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local tellLeft = ARGV[9] == '1'
local TOKENS_FROM = 10
-- Job hashes are <partition prefix>:job:<id>; the prefix is taken from a declared key.
local jobPrefix = string.sub(K.started, 1, -(string.len('started') + 1)) .. 'job:'

local limit = #ARGV - TOKENS_FROM + 1
if cap ~= '' then limit = math.min(limit, tonumber(cap) - redis.call('ZCARD', K.InProgress)) end

-- In CLAIMED_JOB_FIELDS order. A nil would end the reply's array, so an absent field is false (nil in the reply).
local function claimedValues(job)
  return {
    job.id, job.name, job.payload, job.headers or false, job.routeParams or false, job.queryParams or false,
    job.owner or false, job.idempotencyKey or false, job.fingerprint, job.traceContext or false,
    job.retryCount or false, job.maxRetries, job.recoveryCount or false, job.progress or false,
    job.result or false, job.error or false, job.createdAt, job.completedAt or false,
    job.cancelRequested or false,
  }
end

-- The first field the codec needs to build a Job that is absent (it checks their content itself).
-- Spelled out: a table of names would be built for every job claimed.
local function missingField(job)
  if not job.name then return 'name' end
  if not job.payload then return 'payload' end
  if not job.fingerprint then return 'fingerprint' end
  if not job.maxRetries then return 'maxRetries' end
  if not job.createdAt then return 'createdAt' end
  return nil
end

-- The next `want` due entries over the names, in due-time then entry (submission) order, each with the
-- index of its name.
local function dueEntries(want)
  if nameCount == 1 then
    local entries = redis.call('ZRANGE', KEYS[FIXED_KEYS + 1], '-inf', now, 'BYSCORE', 'LIMIT', 0, want)
    local picked = {}
    for i, entry in ipairs(entries) do picked[i] = { entry, 1 } end
    return picked
  end
  local heads = {}
  for n = 1, nameCount do
    heads[n] = redis.call('ZRANGE', KEYS[FIXED_KEYS + 2 * n - 1], '-inf', now, 'BYSCORE', 'LIMIT', 0, want, 'WITHSCORES')
  end
  local at, picked = {}, {}
  for n = 1, nameCount do at[n] = 1 end
  while #picked < want do
    local best, bestScore
    for n = 1, nameCount do
      local entry = heads[n][at[n]]
      if entry then
        local score = tonumber(heads[n][at[n] + 1])
        if not best or score < bestScore or (score == bestScore and entry < heads[best][at[best]]) then
          best, bestScore = n, score
        end
      end
    end
    if not best then break end
    picked[#picked + 1] = { heads[best][at[best]], best }
    at[best] = at[best] + 2
  end
  return picked
end

local claimed, unreadable = {}, {}
local function report(id, cause, failed)
  unreadable[#unreadable + 1] = id
  unreadable[#unreadable + 1] = cause
  unreadable[#unreadable + 1] = failed and '1' or '0'
end

-- Every entry looked at leaves its waiting set (claimed, failed or dropped), so the loop always ends.
local drained = false
while #claimed < limit do
  local entries = dueEntries(limit - #claimed)
  if #entries == 0 then
    drained = true
    break
  end
  for _, picked in ipairs(entries) do
    local entry, n = picked[1], picked[2]
    K.waiting, K.leases = KEYS[FIXED_KEYS + 2 * n - 1], KEYS[FIXED_KEYS + 2 * n]
    local id = idOfWaitingEntry(entry)
    local key = id and (jobPrefix .. id)
    local job, _, cause
    if key then job, _, cause = readJob(key) end
    local missing = job and isWaiting(job.status) and missingField(job)
    if missing then cause, job = "field '" .. missing .. "' is missing", nil end
    if job and isWaiting(job.status) then
      local token = ARGV[TOKENS_FROM + #claimed]
      leaveStatus(K, job)
      local expiresAt = now + leaseMs
      if job.retryDelayUntil then redis.call('HDEL', key, 'retryDelayUntil') end
      redis.call('HSET', key, 'status', 'InProgress', 'startedAt', now, 'lastUpdatedAt', now,
        'workerId', workerId, 'leaseToken', token, 'leaseExpiresAt', expiresAt)
      redis.call('ZADD', K.InProgress, now, job.id)
      redis.call('ZADD', K.leases, expiresAt, job.id)
      redis.call('ZADD', K.started, now, job.id)
      claimed[#claimed + 1] = claimedValues(job)
    elseif cause and cause ~= 'the key is not a hash' then
      redis.call('ZREM', K.waiting, entry)
      report(id, failUnreadable(K, key, id, cause, now, failedTtlMs, unreadableCode), true)
    else
      -- A missing job, or one no longer waiting: its entry goes, so that it never blocks the queue. A
      -- key that is not a hash (no job to fail) is left in place for inspection.
      redis.call('ZREM', K.waiting, entry)
      if id and not job then
        redis.call('ZREM', K.Queued, id)
        redis.call('ZREM', K.Scheduled, id)
      end
      if cause then report(id, cause .. '; its queue entry was dropped and the key left as it is', false) end
    end
  end
end
if not tellLeft then return { claimed, unreadable } end
-- A claim that stopped at its limit (or its cap) looks for one more due entry, one per name at most.
local left = 0
if not drained then
  for n = 1, nameCount do
    if #redis.call('ZRANGE', KEYS[FIXED_KEYS + 2 * n - 1], '-inf', now, 'BYSCORE', 'LIMIT', 0, 1) > 0 then
      left = 1
      break
    end
  end
end
return { claimed, unreadable, left }
