-- createJob: idempotency, admission and the new Queued job, for one or more submissions in one round
-- trip (the store sends the submissions of one moment together), each as if it ran alone, in order.
-- KEYS: store keys, then one new job's hash per submission.
-- ARGV: per submission, in KEYS order: the number of its arguments that follow, then job id, now,
--       maximumQueueSize, idempotency digest ('' when none), then the job's field/value pairs.
-- Returns per submission {'existing', <fields>} | {'queue-full', waiting} | {'created'} | 'error:<message>'.
local pruneAt = nil

local function create(newJobKey, from)
  local jobId, now, maximumQueueSize, digest = ARGV[from], tonumber(ARGV[from + 1]), tonumber(ARGV[from + 2]), ARGV[from + 3]
  local fieldsFrom, fieldsTo = from + 4, from + tonumber(ARGV[from - 1]) - 1

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

  local waiting = redis.call('ZCARD', QUEUED_INDEX) + redis.call('ZCARD', SCHEDULED_INDEX)
  if waiting >= maximumQueueSize then return { 'queue-full', waiting } end

  local job = { id = jobId, seq = tostring(redis.call('INCR', SEQUENCE)) }
  -- An unreadable leftover under this id must not lend the new job any of its fields.
  if leftover then redis.call('DEL', newJobKey) end
  redis.call('HSET', newJobKey, 'seq', job.seq, unpack(ARGV, fieldsFrom, fieldsTo))
  if digest ~= '' then
    redis.call('HSET', newJobKey, 'idempotencyDigest', digest)
    redis.call('HSET', IDEMPOTENCY, digest, jobId)
    -- An earlier job's retention with this key must not delete the new mapping.
    redis.call('ZREM', IDEMPOTENCY_EXPIRIES, digest)
  end
  redis.call('ZADD', QUEUED_INDEX, job.seq, jobId)
  redis.call('ZADD', WAITING, now, waitingEntry(job))
  -- Every 16th submission prunes the terminal indexes: that bounds them between the reads (stats,
  -- listing), which prune before they count, at a fraction of the cost of pruning on every submit.
  if tonumber(job.seq) % 16 == 0 then pruneAt = now end
  return { 'created' }
end

local outcomes = eachJob(create)
if pruneAt then pruneTerminalJobs(pruneAt) end
-- No PUBLISH here: the store sends the batch's one job-available right after this script, in the same
-- pipeline, so that Redis delivers it ahead of this reply (RedisScripts.runThenPublish).
return outcomes
