-- Shared by every script of the Redis job store: the loader (redis-scripts.ts) puts this file between
-- the `#!lua` shebang and the script's own body, so it runs on every call: it builds no tables and no
-- strings up front (they made an empty call ~9 µs instead of ~3 µs), only locals and functions, and
-- the loader leaves out the functions a script does not use (commonFor). Each top-level function
-- closes with an `end` alone on its line, which is how the loader finds where it ends.
--
-- KEYS[1..13] are the store-wide keys, in the order of RedisKeys.store; a script's job keys follow them.
-- Every key starts with the store prefix, whose {hash tag} puts them all in one Cluster slot.
local WAITING = KEYS[1]               -- zset: "<seq>:<id>" of Queued and Scheduled jobs, scored by due time
local LEASES = KEYS[2]                -- zset: InProgress job ids, scored by lease expiry
local STARTED = KEYS[3]               -- zset: InProgress job ids, scored by start time (recovery's hard cap)
local IDEMPOTENCY = KEYS[4]           -- hash: idempotency digest -> job id
local IDEMPOTENCY_EXPIRIES = KEYS[5]  -- zset: idempotency digests, scored by the end of their job's retention
local SEQUENCE = KEYS[6]              -- string: submission counter
local RECOVERY_LOCK = KEYS[7]         -- string: "<token> <held until>" of the process sweeping
-- zsets of job ids per status, KEYS[8..13] in the order of JOB_STATUSES: live ones scored by seq,
-- terminal ones by the end of their retention (one index per job serves listing, counting and pruning;
-- with one retention per status, that order is the order in which they finished).
local QUEUED_INDEX, SCHEDULED_INDEX, IN_PROGRESS_INDEX = KEYS[8], KEYS[9], KEYS[10]
local COMPLETED_INDEX, FAILED_INDEX, CANCELED_INDEX = KEYS[11], KEYS[12], KEYS[13]
local STORE_KEY_COUNT = 13

-- The index of a status, or nil for a string that is no status.
local function statusIndex(status)
  if status == 'Queued' then return QUEUED_INDEX end
  if status == 'Scheduled' then return SCHEDULED_INDEX end
  if status == 'InProgress' then return IN_PROGRESS_INDEX end
  if status == 'Completed' then return COMPLETED_INDEX end
  if status == 'Failed' then return FAILED_INDEX end
  if status == 'Canceled' then return CANCELED_INDEX end
  return nil
end

-- Taken from a declared key rather than from ARGV, so that a key built from it cannot leave its slot.
-- Built on first use: most calls need neither.
local prefix
local function storePrefix()
  if not prefix then prefix = string.sub(WAITING, 1, -(string.len(':waiting') + 1)) end
  return prefix
end

-- Job ids found inside a script (claim, recovery, listing, an idempotency hit) have no KEYS entry, so
-- their hash key is built here: the one exception to "every key in KEYS". The prefix carries the hash
-- tag, so the key hashes to the slot of the declared keys; the #!lua shebang makes Redis Cluster reject
-- any script that strays (test/store/redis-key-slots.spec.ts runs the store on a cluster node).
local function jobKey(id)
  return storePrefix() .. ':job:' .. id
end

-- Fields at their usual value are absent (redis-job-codec.ts): retryCount and recoveryCount 0, headers,
-- routeParams and queryParams {}, cancelRequested false. A terminal job keeps no seq (only live jobs are
-- ordered) and no lastUpdatedAt (it is its completedAt).

local function isWaiting(status)
  return status == 'Queued' or status == 'Scheduled'
end

local function isTerminal(status)
  return status == 'Completed' or status == 'Failed' or status == 'Canceled'
end

-- Why the scripts cannot handle a job table, or nil when they can. They read only status, id and, for
-- a live job, seq: payloads, results and every other JSON field stay opaque text here (cjson would cost
-- time in proportion to their size, and refuse JSON nested over 1,000 deep); the codec reads those.
local function unreadableCause(job)
  if not job.status then return "field 'status' is missing" end
  if not statusIndex(job.status) then return "status '" .. job.status .. "' is not a job status" end
  if not job.id then return "field 'id' is missing" end
  if not isTerminal(job.status) and not job.seq then return "field 'seq' is missing" end
  return nil
end

-- The job as a table of its fields plus its HGETALL reply; nil when it is missing; nil, nil and the
-- cause when it is unreadable (not a hash, or see unreadableCause). An unreadable job is never handed out.
local function readJob(key)
  local flat = redis.pcall('HGETALL', key)
  if flat.err then return nil, nil, 'the key is not a hash' end
  if #flat == 0 then return nil end
  local job = {}
  for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
  local cause = unreadableCause(job)
  if cause then return nil, nil, cause end
  return job, flat
end

-- What a fenced transition needs of the job, or nil when the token no longer holds its lease.
local function leasedJob(key, token)
  local values = redis.pcall('HMGET', key, 'status', 'leaseToken', 'id', 'seq', 'cancelRequested', 'idempotencyDigest')
  if values.err or values[1] ~= 'InProgress' or values[2] ~= token then return nil end
  return {
    status = values[1], id = values[3], seq = values[4],
    cancelRequested = values[5], idempotencyDigest = values[6],
  }
end

-- Zset members with equal scores sort by their bytes: a zero-padded submission number in front of the
-- id makes jobs due at the same time come out in submission order.
local function waitingEntry(job)
  return string.rep('0', 16 - string.len(job.seq)) .. job.seq .. ':' .. job.id
end

local function idOfWaitingEntry(entry)
  return string.match(entry, '^%d+:(.+)$')
end

-- job-finished goes to a channel of its own (RedisKeys.finished): workers listen to ':events' only, so
-- that they do not hear of every job finished anywhere.
local function publish(event)
  local channel = event.type == 'job-finished' and ':finished' or ':events'
  redis.call('PUBLISH', storePrefix() .. channel, cjson.encode(event))
end

-- JSON values arrive encoded; '' stands for null, stored as an absent field.
local function setJsonField(key, field, encoded)
  if encoded == '' then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, encoded)
  end
end

-- Takes the job out of the indexes of its current status.
local function leaveStatus(job)
  redis.call('ZREM', statusIndex(job.status), job.id)
  if job.status == 'InProgress' then
    redis.call('ZREM', LEASES, job.id)
    redis.call('ZREM', STARTED, job.id)
  elseif isWaiting(job.status) then
    redis.call('ZREM', WAITING, waitingEntry(job))
  end
end

-- Takes the lease fields that startLease sets off the hash, with any further fields to clear in the same
-- HDEL. The one list of the lease fields, for every transition out of InProgress.
local function dropLease(key, ...)
  redis.call('HDEL', key, 'leaseToken', 'leaseExpiresAt', 'workerId', ...)
end

-- Queued or Scheduled -> InProgress under a fresh lease. The job table follows the hash.
local function startLease(key, job, token, workerId, now, leaseMs)
  leaveStatus(job)
  local startedAt = string.format('%d', now)
  local expiresAt = string.format('%d', now + leaseMs)
  if job.retryDelayUntil then redis.call('HDEL', key, 'retryDelayUntil') end
  redis.call('HSET', key, 'status', 'InProgress', 'startedAt', startedAt, 'lastUpdatedAt', startedAt,
    'workerId', workerId, 'leaseToken', token, 'leaseExpiresAt', expiresAt)
  redis.call('ZADD', IN_PROGRESS_INDEX, job.seq, job.id)
  redis.call('ZADD', LEASES, expiresAt, job.id)
  redis.call('ZADD', STARTED, now, job.id)
  job.retryDelayUntil = nil
  job.status, job.startedAt, job.lastUpdatedAt = 'InProgress', startedAt, startedAt
  job.workerId, job.leaseToken, job.leaseExpiresAt = workerId, token, expiresAt
end

-- InProgress -> Queued, due at once (release, recovery): not a failed attempt. The caller publishes.
-- The job was due before anything submitted since, so it goes to the head of the queue: it takes the
-- due time of the job due the longest, when that one is due already (the oldest waiting age stays
-- what it was), else now. Among jobs due at the same time, submission order decides.
local function requeue(key, job, now)
  leaveStatus(job)
  dropLease(key, 'startedAt', 'retryDelayUntil')
  redis.call('HSET', key, 'status', 'Queued', 'lastUpdatedAt', now)
  redis.call('ZADD', QUEUED_INDEX, job.seq, job.id)
  local headDueAt = tonumber(redis.call('ZRANGE', WAITING, 0, 0, 'WITHSCORES')[2])
  redis.call('ZADD', WAITING, headDueAt and headDueAt < now and headDueAt or now, waitingEntry(job))
end

-- Any live status -> Completed, Failed or Canceled. The job, and its idempotency key, stay readable for
-- ttlMs: the hash expires by itself, the index entries go with pruneExpired. Further fields to clear may
-- follow ttlMs, so that they go in the same HDEL.
local function finish(key, job, status, now, ttlMs, ...)
  leaveStatus(job)
  dropLease(key, 'retryDelayUntil', 'seq', 'lastUpdatedAt', ...)
  redis.call('HSET', key, 'status', status, 'completedAt', now)
  redis.call('PEXPIRE', key, ttlMs)
  local expiresAt = now + ttlMs
  redis.call('ZADD', statusIndex(status), expiresAt, job.id)
  if job.idempotencyDigest then
    redis.call('ZADD', IDEMPOTENCY_EXPIRIES, expiresAt, job.idempotencyDigest)
  end
  publish({ type = 'job-finished', jobId = job.id })
end

-- Drops a waiting entry whose job is missing or no longer waiting, so that one bad entry never blocks
-- the queue. A job that is gone leaves its status entries too; a key that is not a hash (no job to fail)
-- is left in place for inspection.
local function dropWaitingEntry(entry, id, job)
  redis.call('ZREM', WAITING, entry)
  if id and not job then
    redis.call('ZREM', QUEUED_INDEX, id)
    redis.call('ZREM', SCHEDULED_INDEX, id)
  end
end

-- A job hash the scripts cannot handle (changed outside the store) is failed where it is, visibly:
-- Failed with `code`, out of every live index and into the Failed one, expiring after failedTtlMs, so
-- that it is neither orphaned (no TTL, counted nowhere) nor handed to a handler. Its other fields stay
-- for inspection; a GET shows it (the codec reads such a job leniently).
local function failUnreadable(key, id, cause, now, failedTtlMs, code)
  for _, index in ipairs({ QUEUED_INDEX, SCHEDULED_INDEX, IN_PROGRESS_INDEX, LEASES, STARTED }) do
    redis.call('ZREM', index, id)
  end
  dropLease(key, 'retryDelayUntil', 'seq', 'lastUpdatedAt')
  local message = 'Job ' .. id .. ' cannot be read from Redis (' .. cause .. '): its hash was changed' ..
    ' outside the job store, so it was failed instead of run. Submit it again, under a new idempotency' ..
    ' key if it had one.'
  redis.call('HSET', key, 'id', id, 'status', 'Failed', 'completedAt', now,
    'error', cjson.encode({ code = code, message = message }))
  redis.call('PEXPIRE', key, failedTtlMs)
  local expiresAt = now + failedTtlMs
  redis.call('ZADD', FAILED_INDEX, expiresAt, id)
  local digest = redis.call('HGET', key, 'idempotencyDigest')
  if digest then redis.call('ZADD', IDEMPOTENCY_EXPIRIES, expiresAt, digest) end
  publish({ type = 'job-finished', jobId = id })
  return message
end

-- Bounds the work one call does on index entries of jobs past retention (and so any unpack() below).
local PRUNE_BATCH = 1000

-- Forgets terminal jobs and idempotency keys whose retention ended by `now` (the caller's clock, as
-- the memory store does). Their hashes already expire by TTL; this keeps counts and listings exact.
local function pruneTerminalJobs(now)
  for _, index in ipairs({ COMPLETED_INDEX, FAILED_INDEX, CANCELED_INDEX }) do
    local ids = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, PRUNE_BATCH)
    if #ids > 0 then redis.call('ZREM', index, unpack(ids)) end
  end
end

local function pruneIdempotencyKeys(now)
  local digests = redis.call('ZRANGEBYSCORE', IDEMPOTENCY_EXPIRIES, '-inf', now, 'LIMIT', 0, PRUNE_BATCH)
  if #digests > 0 then
    redis.call('HDEL', IDEMPOTENCY, unpack(digests))
    redis.call('ZREM', IDEMPOTENCY_EXPIRIES, unpack(digests))
  end
end

local function pruneExpired(now)
  pruneTerminalJobs(now)
  pruneIdempotencyKeys(now)
end

-- For the scripts that take a batch: runs `step` once per job hash declared after the store keys. Each
-- job's ARGV part starts with the number of arguments that follow; `step` gets the job's key and the
-- index of its first argument. A Lua error in one job's step (a key of the wrong type, tampered with)
-- answers 'error:<message>' for that job and leaves the others to run; what that step wrote before it
-- failed stays, as with a script that fails.
local function eachJob(step)
  local outcomes = {}
  local from = 1
  for i = 1, #KEYS - STORE_KEY_COUNT do
    local ok, outcome = pcall(step, KEYS[STORE_KEY_COUNT + i], from + 1)
    if ok then
      outcomes[i] = outcome
    else
      outcomes[i] = 'error:' .. (type(outcome) == 'table' and tostring(outcome.err) or tostring(outcome))
    end
    from = from + 1 + tonumber(ARGV[from])
  end
  return outcomes
end
