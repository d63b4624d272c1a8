-- createJobs: idempotency, admission and the new Queued job, for one or more submissions to one
-- partition in one round trip (the store sends the submissions of one moment together), each as if it
-- ran alone, in order.
-- KEYS (9 + 3 per submission): the partition's status:Queued, status:Scheduled, status:Completed,
--   status:Failed, status:Canceled, idempotency, idempotency-expiries, sequence, names; then per
--   submission its new job's hash, waiting:<its name>, and the hash of the job its idempotency key was
--   last seen mapped to (its own hash again when none).
-- ARGV: per submission, in KEYS order: the number of its arguments that follow, then job id, name, now,
--   queue limit (maximumQueueSize, less the other partitions' waiting jobs), idempotency digest ('' when
--   none), the id of the mapped job declared ('' when none), its sequence number ('' to take the
--   partition's next: with one partition; with more, the store numbers submissions itself), then the
--   job's field/value pairs.
-- Returns per submission {'existing', <fields>} | {'mapped', <id>} | {'queue-full', waiting} |
--   {'created'} | 'error:<message>'. 'mapped': the key names a job this call did not declare; the store
--   calls again with that job's hash declared.
--- @include "read-job"
--- @include "waiting-entry"
--- @include "prune"
local K = {
  Queued = KEYS[1], Scheduled = KEYS[2], Completed = KEYS[3], Failed = KEYS[4], Canceled = KEYS[5],
  idempotency = KEYS[6], idempotencyExpiries = KEYS[7], sequence = KEYS[8], names = KEYS[9],
}
local FIXED_KEYS = 9
local pruneAt = nil
-- The partition's waiting jobs, counted once per call (nil until a submission needs it) and kept up to
-- date as this call adds jobs; and the names this call has added to K.names.
local waiting = nil
local namesAdded = {}

local function create(newJobKey, waitingKey, mappedJobKey, from)
  -- nowArg goes to Redis as the string it came as (a Lua number is formatted anew by every call).
  local jobId, name, nowArg = ARGV[from], ARGV[from + 1], ARGV[from + 2]
  local now = tonumber(nowArg)
  local queueLimit, digest, mappedHint, seq = tonumber(ARGV[from + 3]), ARGV[from + 4], ARGV[from + 5], ARGV[from + 6]
  local fieldsFrom, fieldsTo = from + 7, from + tonumber(ARGV[from - 1]) - 1

  if digest ~= '' then
    -- A key past its retention must not make a replay. (Terminal indexes are pruned below, less often.)
    pruneIdempotencyKeys(K, now)
    local mappedId = redis.call('HGET', K.idempotency, digest)
    if mappedId and mappedId ~= jobId then
      if mappedId ~= mappedHint then return { 'mapped', mappedId } end
      -- A key whose job has expired or become unreadable points nowhere.
      local _, flat = readJob(mappedJobKey)
      if flat then return { 'existing', flat } end
    end
  end
  local _, existing, leftover = readJob(newJobKey)
  if existing then return { 'existing', existing } end

  if not waiting then waiting = redis.call('ZCARD', K.Queued) + redis.call('ZCARD', K.Scheduled) end
  if waiting >= queueLimit then return { 'queue-full', waiting } end

  -- %d, not tostring: past 1e14, tostring writes exponent notation (1.0e+14), which no entry parser reads.
  if seq == '' then seq = string.format('%d', redis.call('INCR', K.sequence)) end
  local job = { id = jobId, seq = seq }
  -- An unreadable leftover under this id must not lend the new job any of its fields.
  if leftover then redis.call('DEL', newJobKey) end
  redis.call('HSET', newJobKey, 'seq', job.seq, unpack(ARGV, fieldsFrom, fieldsTo))
  if digest ~= '' then
    redis.call('HSET', newJobKey, 'idempotencyDigest', digest)
    redis.call('HSET', K.idempotency, digest, jobId)
    -- An earlier job's retention with this key must not delete the new mapping.
    redis.call('ZREM', K.idempotencyExpiries, digest)
  end
  -- ZADD answers how many it added: a leftover still indexed under this id is not counted twice.
  waiting = waiting + redis.call('ZADD', K.Queued, nowArg, jobId)
  redis.call('ZADD', waitingKey, nowArg, waitingEntry(job))
  if not namesAdded[name] then
    redis.call('SADD', K.names, name)
    namesAdded[name] = true
  end
  -- Every 16th submission prunes the terminal indexes: that bounds them between the reads (stats,
  -- listing), which prune before they count, at a fraction of the cost of pruning on every submit.
  if tonumber(job.seq) % 16 == 0 then pruneAt = now end
  return { 'created' }
end

-- A Lua error in one submission (a key of the wrong type, tampered with) answers 'error:<message>' for
-- it and leaves the others to run; what it wrote before it failed stays, as with a script that fails.
local outcomes = {}
local from = 1
for i = 1, (#KEYS - FIXED_KEYS) / 3 do
  local at = FIXED_KEYS + 3 * (i - 1)
  local ok, outcome = pcall(create, KEYS[at + 1], KEYS[at + 2], KEYS[at + 3], from + 1)
  outcomes[i] = ok and outcome or ('error:' .. (type(outcome) == 'table' and tostring(outcome.err) or tostring(outcome)))
  from = from + 1 + tonumber(ARGV[from])
end
if pruneAt then pruneTerminalJobs(K, pruneAt) end
-- No PUBLISH here: the store sends the batch's job-available events right after this script, in the
-- same write, so that Redis delivers them ahead of this reply (RedisScripts.runThenPublish).
return outcomes
