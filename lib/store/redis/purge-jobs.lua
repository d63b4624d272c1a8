-- purgeJobs: one batch of a purge. Walks the status's index from `offset` (in order of retention end)
-- and deletes the jobs finished before finishedBefore, with their idempotency keys, until `limit` are
-- deleted or `batch` entries were looked at. Entries of jobs already gone are dropped.
-- KEYS: store keys.
-- ARGV: status (Completed, Failed or Canceled), finishedBefore, offset, batch, limit, now, dryRun (1: delete
-- nothing, return the ids it would delete).
-- Returns {deleted ids, offset of the next batch, 1 when the index was walked to its end else 0}.
-- Deleted entries leave the index, so the next batch starts after the entries that were kept.
local status, finishedBefore = ARGV[1], tonumber(ARGV[2])
local offset, batch, limit, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local dryRun = ARGV[7] == '1'

if not isTerminal(status) then return redis.error_reply('purgeJobs: status must be Completed, Failed or Canceled') end
pruneExpired(now)
local index = statusIndex(status)
local ids = redis.call('ZRANGE', index, offset, offset + batch - 1)
local purged, kept = {}, 0
for _, id in ipairs(ids) do
  if #purged >= limit then return { purged, offset + kept, 0 } end
  local key = jobKey(id)
  local fields = redis.pcall('HMGET', key, 'status', 'completedAt', 'idempotencyDigest')
  if fields.err then
    kept = kept + 1
  elseif not fields[1] then
    redis.call('ZREM', index, id)
  elseif fields[1] == status and tonumber(fields[2]) and tonumber(fields[2]) < finishedBefore and dryRun then
    purged[#purged + 1] = id
    kept = kept + 1
  elseif fields[1] == status and tonumber(fields[2]) and tonumber(fields[2]) < finishedBefore then
    redis.call('DEL', key)
    redis.call('ZREM', index, id)
    local digest = fields[3]
    -- A key that names a newer job by now is that job's.
    if digest and redis.call('HGET', IDEMPOTENCY, digest) == id then
      redis.call('HDEL', IDEMPOTENCY, digest)
      redis.call('ZREM', IDEMPOTENCY_EXPIRIES, digest)
    end
    purged[#purged + 1] = id
  else
    kept = kept + 1
  end
end
return { purged, offset + kept, #ids < batch and 1 or 0 }
