-- Shared by every script of the Redis job store: the loader (redis-scripts.ts) puts this file between
-- the `#!lua` shebang and the script's own body.
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
local STATUS_ORDER = { 'Queued', 'Scheduled', 'InProgress', 'Completed', 'Failed', 'Canceled' }
-- zsets of job ids per status: live ones scored by seq, terminal ones by the end of their retention (one
-- index per job serves listing, counting and pruning; with one retention per status, that order is the
-- order in which they finished).
local STATUS_INDEX = {}
for i, status in ipairs(STATUS_ORDER) do STATUS_INDEX[status] = KEYS[7 + i] end
local TERMINAL_INDEXES = { STATUS_INDEX.Completed, STATUS_INDEX.Failed, STATUS_INDEX.Canceled }
local STORE_KEY_COUNT = 13

-- Taken from a declared key rather than from ARGV, so that a key built from it cannot leave its slot.
local PREFIX = string.sub(WAITING, 1, -(string.len(':waiting') + 1))
local EVENTS_CHANNEL = PREFIX .. ':events'

-- Job ids found inside a script (claim, recovery, listing, an idempotency hit) have no KEYS entry, so
-- their hash key is built here: the one exception to "every key in KEYS". The prefix carries the hash
-- tag, so the key hashes to the slot of the declared keys; the #!lua shebang makes Redis Cluster reject
-- any script that strays (test/store/redis-key-slots.spec.ts runs the store on a cluster node).
local function jobKey(id)
  return PREFIX .. ':job:' .. id
end

local KNOWN_STATUS = {}
for _, status in ipairs(STATUS_ORDER) do KNOWN_STATUS[status] = true end
-- Fields at their usual value are absent (redis-job-codec.ts): retryCount and recoveryCount 0, headers,
-- routeParams and queryParams {}, cancelRequested false. A terminal job keeps no seq (only live jobs are
-- ordered) and no lastUpdatedAt (it is its completedAt).
local REQUIRED_FIELDS = { 'id', 'name', 'status', 'fingerprint', 'payload', 'maxRetries', 'createdAt' }
local LIVE_REQUIRED_FIELDS = { 'seq', 'lastUpdatedAt' }
local TERMINAL_REQUIRED_FIELDS = { 'completedAt' }
local JSON_FIELDS = { 'payload', 'headers', 'routeParams', 'queryParams', 'traceContext', 'progress', 'result', 'error' }

local function isWaiting(status)
  return status == 'Queued' or status == 'Scheduled'
end

local function isTerminal(status)
  return status == 'Completed' or status == 'Failed' or status == 'Canceled'
end

-- The job as a table of its fields plus its HGETALL reply, or nil when it is missing or unreadable (not a
-- hash, a field missing, an unknown status, broken JSON). An unreadable job is never handed out; the
-- third value tells it from a missing one.
local function readJob(key)
  local flat = redis.pcall('HGETALL', key)
  if flat.err then return nil, nil, true end
  if #flat == 0 then return nil end
  local job = {}
  for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
  if not KNOWN_STATUS[job.status] then return nil, nil, true end
  for _, field in ipairs(REQUIRED_FIELDS) do
    if job[field] == nil then return nil, nil, true end
  end
  for _, field in ipairs(isTerminal(job.status) and TERMINAL_REQUIRED_FIELDS or LIVE_REQUIRED_FIELDS) do
    if job[field] == nil then return nil, nil, true end
  end
  for _, field in ipairs(JSON_FIELDS) do
    if job[field] ~= nil and not pcall(cjson.decode, job[field]) then return nil, nil, true end
  end
  return job, flat
end

-- Fields no reader outside the scripts needs.
local INTERNAL_FIELDS = { seq = true, leaseToken = true, idempotencyDigest = true }

-- The job table as an HGETALL reply without the internal fields, for a script that changed the hash and
-- the table alike.
local function flatten(job)
  local flat = {}
  for field, value in pairs(job) do
    if not INTERNAL_FIELDS[field] then
      flat[#flat + 1] = field
      flat[#flat + 1] = value
    end
  end
  return flat
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

local function publish(event)
  redis.call('PUBLISH', EVENTS_CHANNEL, cjson.encode(event))
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
  redis.call('ZREM', STATUS_INDEX[job.status], job.id)
  if job.status == 'InProgress' then
    redis.call('ZREM', LEASES, job.id)
    redis.call('ZREM', STARTED, job.id)
  elseif isWaiting(job.status) then
    redis.call('ZREM', WAITING, waitingEntry(job))
  end
end

-- Queued or Scheduled -> InProgress under a fresh lease. The job table follows the hash (flatten()).
local function startLease(key, job, token, workerId, now, leaseMs)
  leaveStatus(job)
  local startedAt = string.format('%d', now)
  local expiresAt = string.format('%d', now + leaseMs)
  if job.retryDelayUntil then redis.call('HDEL', key, 'retryDelayUntil') end
  redis.call('HSET', key, 'status', 'InProgress', 'startedAt', startedAt, 'lastUpdatedAt', startedAt,
    'workerId', workerId, 'leaseToken', token, 'leaseExpiresAt', expiresAt)
  redis.call('ZADD', STATUS_INDEX.InProgress, job.seq, job.id)
  redis.call('ZADD', LEASES, expiresAt, job.id)
  redis.call('ZADD', STARTED, now, job.id)
  job.retryDelayUntil = nil
  job.status, job.startedAt, job.lastUpdatedAt = 'InProgress', startedAt, startedAt
  job.workerId, job.leaseToken, job.leaseExpiresAt = workerId, token, expiresAt
end

-- InProgress -> Queued, due at once (release, recovery): not a failed attempt. The caller publishes.
local function requeue(key, job, now)
  leaveStatus(job)
  redis.call('HDEL', key, 'leaseToken', 'leaseExpiresAt', 'workerId', 'startedAt', 'retryDelayUntil')
  redis.call('HSET', key, 'status', 'Queued', 'lastUpdatedAt', now)
  redis.call('ZADD', STATUS_INDEX.Queued, job.seq, job.id)
  redis.call('ZADD', WAITING, now, waitingEntry(job))
end

-- Any live status -> Completed, Failed or Canceled. The job, and its idempotency key, stay readable for
-- ttlMs: the hash expires by itself, the index entries go with pruneExpired. Further fields to clear may
-- follow ttlMs, so that they go in the same HDEL.
local function finish(key, job, status, now, ttlMs, ...)
  leaveStatus(job)
  redis.call('HDEL', key, 'leaseToken', 'leaseExpiresAt', 'workerId', 'retryDelayUntil', 'seq', 'lastUpdatedAt', ...)
  redis.call('HSET', key, 'status', status, 'completedAt', now)
  redis.call('PEXPIRE', key, ttlMs)
  local expiresAt = now + ttlMs
  redis.call('ZADD', STATUS_INDEX[status], expiresAt, job.id)
  if job.idempotencyDigest then
    redis.call('ZADD', IDEMPOTENCY_EXPIRIES, expiresAt, job.idempotencyDigest)
  end
  publish({ type = 'job-finished', jobId = job.id })
end

-- Drops a waiting entry whose job is missing, unreadable or no longer waiting, so that one bad entry
-- never blocks the queue. A job that is gone leaves its status entries too; an unreadable hash itself is
-- left in place for inspection.
local function dropWaitingEntry(entry, id, job)
  redis.call('ZREM', WAITING, entry)
  if id and not job then
    redis.call('ZREM', STATUS_INDEX.Queued, id)
    redis.call('ZREM', STATUS_INDEX.Scheduled, id)
  end
end

-- Bounds the work one call does on index entries of jobs past retention (and so any unpack() below).
local PRUNE_BATCH = 1000

-- Forgets terminal jobs and idempotency keys whose retention ended by `now` (the caller's clock, as
-- the memory store does). Their hashes already expire by TTL; this keeps counts and listings exact.
local function pruneTerminalJobs(now)
  for _, index in ipairs(TERMINAL_INDEXES) do
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
