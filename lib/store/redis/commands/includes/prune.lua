-- Bounds the work one call does on index entries of jobs past retention (and so any unpack() below).
local PRUNE_BATCH = 1000

-- Forgets terminal jobs whose retention ended by `now` (the caller's clock, as the memory store does).
-- Their hashes already expire by TTL; this keeps counts and listings exact.
local function pruneTerminalJobs(K, now)
  for _, index in ipairs({ K.Completed, K.Failed, K.Canceled }) do
    local ids = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, PRUNE_BATCH)
    if #ids > 0 then redis.call('ZREM', index, unpack(ids)) end
  end
end

-- Forgets idempotency keys whose job's retention ended by `now`.
local function pruneIdempotencyKeys(K, now)
  local digests = redis.call('ZRANGEBYSCORE', K.idempotencyExpiries, '-inf', now, 'LIMIT', 0, PRUNE_BATCH)
  if #digests > 0 then
    redis.call('HDEL', K.idempotency, unpack(digests))
    redis.call('ZREM', K.idempotencyExpiries, unpack(digests))
  end
end
