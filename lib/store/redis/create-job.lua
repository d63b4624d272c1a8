-- createJob: idempotency, admission and the new Queued job, in one round trip.
-- KEYS: store keys, then the new job's hash.
-- ARGV: job id, now, maximumQueueSize, idempotency digest ('' when none), then the job's field/value pairs.
-- Returns {'existing', <fields>} | {'queue-full', waiting} | {'created'}.
local newJobKey = KEYS[STORE_KEY_COUNT + 1]
local jobId, now, maximumQueueSize, digest = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local FIELDS_FROM = 5

-- The job this submission replays: the one its idempotency key points to, else one with its id.
-- A key whose job has expired or become unreadable points nowhere. Returns readJob()'s three values.
local function existingJob()
  if digest ~= '' then
    local mappedId = redis.call('HGET', IDEMPOTENCY, digest)
    if mappedId then
      local job, flat = readJob(jobKey(mappedId))
      if flat then return job, flat end
    end
  end
  return readJob(newJobKey)
end

-- A key past its retention must not make a replay. (Terminal indexes are pruned below, less often.)
if digest ~= '' then pruneIdempotencyKeys(now) end

local _, existing, leftover = existingJob()
if existing then return { 'existing', existing } end

local waiting = redis.call('ZCARD', STATUS_INDEX.Queued) + redis.call('ZCARD', STATUS_INDEX.Scheduled)
if waiting >= maximumQueueSize then return { 'queue-full', waiting } end

local job = { id = jobId, seq = tostring(redis.call('INCR', SEQUENCE)) }
-- An unreadable leftover under this id must not lend the new job any of its fields.
if leftover then redis.call('DEL', newJobKey) end
redis.call('HSET', newJobKey, 'seq', job.seq, unpack(ARGV, FIELDS_FROM))
if digest ~= '' then
  redis.call('HSET', newJobKey, 'idempotencyDigest', digest)
  redis.call('HSET', IDEMPOTENCY, digest, jobId)
  -- An earlier job's retention with this key must not delete the new mapping.
  redis.call('ZREM', IDEMPOTENCY_EXPIRIES, digest)
end
redis.call('ZADD', STATUS_INDEX.Queued, job.seq, jobId)
redis.call('ZADD', WAITING, now, waitingEntry(job))
publish({ type = 'job-available' })
-- Every 16th submission prunes the terminal indexes: that bounds them between the reads (stats,
-- listing), which prune before they count, at a fraction of the cost of pruning on every submit.
if tonumber(job.seq) % 16 == 0 then pruneTerminalJobs(now) end
return { 'created' }
