--- @include "read-job"
--- @include "waiting-entry"
--- @include "fail-unreadable"

-- The claim: leases up to a limit of due jobs of the given names in one partition, in due-time then
-- submission order (a merge of the names' queue heads). Used by claimJobs.lua, and by completeJobs.lua
-- when a claim rides on a batch of completions (one round trip for both).
-- The one place that touches keys the script does not declare: the hashes of the jobs it pops, built
-- from a declared key's prefix. It cannot know them before it pops (a claim that first read candidates
-- and then declared them cost 30% of the throughput, and races other claims); BullMQ does the same.
-- Every script that includes this file carries the Dragonfly flag line that allows it there; on Redis
-- Cluster the keys share the declared slot.

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

-- The next `want` due entries over the names (C.waiting[n]), in due-time then entry (submission) order,
-- each with the index of its name.
local function dueEntries(C, want)
  if #C.waiting == 1 then
    local entries = redis.call('ZRANGE', C.waiting[1], '-inf', C.now, 'BYSCORE', 'LIMIT', 0, want)
    local picked = {}
    for i, entry in ipairs(entries) do picked[i] = { entry, 1 } end
    return picked
  end
  local heads = {}
  for n, waiting in ipairs(C.waiting) do
    heads[n] = redis.call('ZRANGE', waiting, '-inf', C.now, 'BYSCORE', 'LIMIT', 0, want, 'WITHSCORES')
  end
  local at, picked = {}, {}
  for n = 1, #C.waiting do at[n] = 1 end
  while #picked < want do
    local best, bestScore
    for n = 1, #C.waiting do
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

-- COMMAND key <values...>, in slices of at most 1,000 values (unpack's stack is bounded; even, for
-- ZADD's score/member pairs); nothing when there are none.
local function callMany(command, key, values)
  for i = 1, #values, 1000 do
    redis.call(command, key, unpack(values, i, math.min(i + 999, #values)))
  end
end

-- Claims in the partition of K (its started, Queued, Scheduled, InProgress, Failed and
-- idempotency-expiries keys, and channels: its prefix). C: waiting and leases (the names' keys, in the
-- same order), now, leaseMs, workerId, cap ('' for none), failedTtlMs, unreadableCode, tellLeft, and
-- where in ARGV the fresh lease tokens start (one per slot: their count is the limit).
-- Returns {{<values>, ...}, {<id>, <cause>, <'1' when failed, '0' when dropped>, ...}, <left>}: the
--   claimed jobs, the i-th under the i-th token, so the worker needs no second read; then the
--   unreadable jobs met on the way (see failUnreadable), which do not count against the limit; then,
--   when C.tellLeft, 1 when a job of these names is still due here, else 0 (with several partitions,
--   the store stops visiting a partition only on a 0: a short claim may mean that a concurrent claim
--   took jobs, not that none are left). Each job's values come in a fixed order, nil for an absent
--   field (redis-job-codec.ts: CLAIMED_JOB_FIELDS). Left out, as the caller knows them: the fields the
--   claim sets (status, startedAt, lastUpdatedAt, workerId, leaseExpiresAt) and clears (retryDelayUntil).
local function claimDue(K, C)
  -- Job hashes are <partition prefix>:job:<id>; the prefix is taken from a declared key.
  local jobPrefix = string.sub(K.started, 1, -(string.len('started') + 1)) .. 'job:'
  -- now goes to Redis as the string it came as; expiresAt as a number (a string.format here would cost
  -- more than Redis's own formatting of it).
  local now, nowArg, workerId = C.now, C.nowArg, C.workerId
  local expiresAt = now + C.leaseMs
  local limit = C.tokenCount
  if C.cap ~= '' then limit = math.min(limit, tonumber(C.cap) - redis.call('ZCARD', K.InProgress)) end

  local claimed, unreadable = {}, {}
  local function report(id, cause, failed)
    unreadable[#unreadable + 1] = id
    unreadable[#unreadable + 1] = cause
    unreadable[#unreadable + 1] = failed and '1' or '0'
  end

  -- Every entry looked at leaves its waiting set (claimed, failed or dropped), so the loop always ends.
  local drained = false
  while #claimed < limit do
    local entries = dueEntries(C, limit - #claimed)
    if #entries == 0 then
      drained = true
      break
    end
    -- The index changes of the jobs this wave leases, made once for the wave: one command per index
    -- instead of five per job. Each job's own hash is written as it is leased, so an entry met twice
    -- finds it leased.
    local waitingDone, statusDone, leased, leases = {}, {}, {}, {}
    for _, picked in ipairs(entries) do
      local entry, n = picked[1], picked[2]
      K.waiting, K.leases = C.waiting[n], C.leases[n]
      local id = idOfWaitingEntry(entry)
      local key = id and (jobPrefix .. id)
      local job, _, cause
      if key then job, _, cause = readJob(key) end
      local missing = job and isWaiting(job.status) and missingField(job)
      if missing then cause, job = "field '" .. missing .. "' is missing", nil end
      if job and isWaiting(job.status) then
        local token = ARGV[C.tokensFrom + #claimed]
        -- Out of its waiting status (see leaveStatus), with the entry read, should the hash's seq say another.
        local done = waitingDone[n] or {}
        waitingDone[n] = done
        done[#done + 1] = entry
        local own = waitingEntry(job)
        if own ~= entry then done[#done + 1] = own end
        local ids = statusDone[job.status] or {}
        statusDone[job.status] = ids
        ids[#ids + 1] = job.id
        if job.retryDelayUntil then redis.call('HDEL', key, 'retryDelayUntil') end
        redis.call('HSET', key, 'status', 'InProgress', 'startedAt', nowArg, 'lastUpdatedAt', nowArg,
          'workerId', workerId, 'leaseToken', token, 'leaseExpiresAt', expiresAt)
        leased[#leased + 1] = nowArg
        leased[#leased + 1] = job.id
        local expiring = leases[n] or {}
        leases[n] = expiring
        expiring[#expiring + 1] = expiresAt
        expiring[#expiring + 1] = job.id
        claimed[#claimed + 1] = claimedValues(job)
      elseif cause and cause ~= 'the key is not a hash' then
        redis.call('ZREM', K.waiting, entry)
        report(id, failUnreadable(K, key, id, cause, now, C.failedTtlMs, C.unreadableCode), true)
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
    -- The indexes recovery reads first (started, leases), so that a failing write (a key tampered with)
    -- leaves the wave's leased jobs where the recovery sweep finds them.
    callMany('ZADD', K.started, leased)
    for n, expiring in pairs(leases) do callMany('ZADD', C.leases[n], expiring) end
    callMany('ZADD', K.InProgress, leased)
    for n, done in pairs(waitingDone) do callMany('ZREM', C.waiting[n], done) end
    for status, ids in pairs(statusDone) do callMany('ZREM', K[status], ids) end
  end
  if not C.tellLeft then return { claimed, unreadable } end
  -- A claim that stopped at its limit (or its cap) looks for one more due entry, one per name at most.
  local left = 0
  if not drained then
    for _, waiting in ipairs(C.waiting) do
      if #redis.call('ZRANGE', waiting, '-inf', now, 'BYSCORE', 'LIMIT', 0, 1) > 0 then
        left = 1
        break
      end
    end
  end
  return { claimed, unreadable, left }
end

-- The claim's part of a script's keys and arguments, read from KEYS[keysFrom...] (the names' waiting
-- and leases keys, a pair per name) and ARGV[argsFrom...]: now, leaseMs, workerId, cap ('' for none;
-- maxConcurrentJobs less the other partitions' InProgress jobs), failedTtlMs, the JOB_UNREADABLE error
-- code, the number of names, '1' to be told whether due jobs are left ('' not to: one partition needs no
-- answer), the number of tokens, then one fresh lease token per slot.
local function claimArgs(keysFrom, argsFrom)
  local C = {
    now = tonumber(ARGV[argsFrom]), nowArg = ARGV[argsFrom], leaseMs = tonumber(ARGV[argsFrom + 1]), workerId = ARGV[argsFrom + 2],
    cap = ARGV[argsFrom + 3], failedTtlMs = tonumber(ARGV[argsFrom + 4]), unreadableCode = ARGV[argsFrom + 5],
    tellLeft = ARGV[argsFrom + 7] == '1', waiting = {}, leases = {},
    tokenCount = tonumber(ARGV[argsFrom + 8]), tokensFrom = argsFrom + 9,
  }
  for n = 1, tonumber(ARGV[argsFrom + 6]) do
    C.waiting[n] = KEYS[keysFrom + 2 * n - 2]
    C.leases[n] = KEYS[keysFrom + 2 * n - 1]
  end
  return C
end
