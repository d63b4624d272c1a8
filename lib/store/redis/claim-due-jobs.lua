-- claimDueJobs: leases up to `limit` due jobs, in due-time then submission order, in one round trip.
-- KEYS: store keys.
-- ARGV: now, leaseMs, workerId, maxConcurrentJobs ('' for none), failedTtlMs, the JOB_UNREADABLE error
--       code, then one fresh lease token per slot.
-- Returns {{<values>, ...}, {<id>, <cause>, <'1' when failed, '0' when dropped>, ...}}: the claimed jobs,
-- the i-th under the i-th token, so the worker needs no second read; then the unreadable jobs met on
-- the way (see failUnreadable), which do not count against the limit. Each job's values come in a
-- fixed order, nil for an absent field (redis-job-codec.ts: CLAIMED_JOB_FIELDS), which the worker
-- decodes faster than field names and values. Left out, as the caller knows them: the fields the claim
-- sets (status, startedAt, lastUpdatedAt, workerId, leaseExpiresAt) and clears (retryDelayUntil).
local now, leaseMs, workerId, maxConcurrentJobs = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local failedTtlMs, unreadableCode = tonumber(ARGV[5]), ARGV[6]
local TOKENS_FROM = 7

local limit = #ARGV - TOKENS_FROM + 1
if maxConcurrentJobs ~= '' then
  limit = math.min(limit, tonumber(maxConcurrentJobs) - redis.call('ZCARD', IN_PROGRESS_INDEX))
end

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

local claimed, unreadable = {}, {}
local function report(id, cause, failed)
  unreadable[#unreadable + 1] = id
  unreadable[#unreadable + 1] = cause
  unreadable[#unreadable + 1] = failed and '1' or '0'
end

-- Every entry looked at leaves the waiting set (claimed, failed or dropped), so the loop always ends.
while #claimed < limit do
  local entries = redis.call('ZRANGEBYSCORE', WAITING, '-inf', now, 'LIMIT', 0, limit - #claimed)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local id = idOfWaitingEntry(entry)
    local key = id and jobKey(id)
    local job, _, cause
    if key then job, _, cause = readJob(key) end
    local missing = job and isWaiting(job.status) and missingField(job)
    if missing then cause, job = "field '" .. missing .. "' is missing", nil end
    if job and isWaiting(job.status) then
      local token = ARGV[TOKENS_FROM + #claimed]
      startLease(key, job, token, workerId, now, leaseMs)
      claimed[#claimed + 1] = claimedValues(job)
    elseif cause and cause ~= 'the key is not a hash' then
      redis.call('ZREM', WAITING, entry)
      report(id, failUnreadable(key, id, cause, now, failedTtlMs, unreadableCode), true)
    else
      dropWaitingEntry(entry, id, job)
      if cause then report(id, cause .. '; its queue entry was dropped and the key left as it is', false) end
    end
  end
end
return { claimed, unreadable }
