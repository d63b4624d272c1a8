-- purgeJobs: one batch of a purge in one partition. The store read a batch of ids from the status's
-- index first; this script checks each again (it may have changed meanwhile) and deletes those still in
-- the status, finished before finishedBefore and of the name asked for, with their idempotency keys.
-- Entries of jobs already gone leave the index.
-- KEYS (3 + 1 per job): the partition's status:<status>, idempotency, idempotency-expiries; then per
--   job its hash.
-- ARGV: status (Completed, Failed or Canceled), finishedBefore, name ('' for any), most jobs to delete,
--   then the ids in KEYS order.
-- Returns {deleted ids, entries removed from the index (deleted or gone)}.
local INDEX, IDEMPOTENCY, IDEMPOTENCY_EXPIRIES = KEYS[1], KEYS[2], KEYS[3]
local FIXED_KEYS = 3
local status, finishedBefore, name, limit = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local IDS_FROM = 5

if status ~= 'Completed' and status ~= 'Failed' and status ~= 'Canceled' then
  return redis.error_reply('purgeJobs: status must be Completed, Failed or Canceled')
end
local purged, removed = {}, 0
for i = 1, #KEYS - FIXED_KEYS do
  local key, id = KEYS[FIXED_KEYS + i], ARGV[IDS_FROM + i - 1]
  local fields = redis.pcall('HMGET', key, 'status', 'completedAt', 'name', 'idempotencyDigest')
  if fields.err then
    -- Not a hash: left for inspection.
  elseif not fields[1] then
    redis.call('ZREM', INDEX, id)
    removed = removed + 1
  elseif #purged < limit and fields[1] == status and tonumber(fields[2]) and tonumber(fields[2]) < finishedBefore
      and (name == '' or fields[3] == name) then
    redis.call('DEL', key)
    redis.call('ZREM', INDEX, id)
    removed = removed + 1
    local digest = fields[4]
    -- A key that names a newer job by now is that job's.
    if digest and redis.call('HGET', IDEMPOTENCY, digest) == id then
      redis.call('HDEL', IDEMPOTENCY, digest)
      redis.call('ZREM', IDEMPOTENCY_EXPIRIES, digest)
    end
    purged[#purged + 1] = id
  end
end
return { purged, removed }
