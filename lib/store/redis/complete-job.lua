-- completeJob: attempts that succeeded, one or more in one round trip (the store sends the completions
-- of one moment together). Completion wins over a cancellation requested meanwhile.
-- KEYS: store keys, then one job hash per completion.
-- ARGV: per completion, in KEYS order: 5, now, token, result JSON ('' for null), completedTtlMs,
--       dropPayload ('1' with retention.dropPayloadOnFinish, else '').
-- Returns per completion 'completed' | 'lease-lost' | 'error:<message>' (see eachJob).
local function complete(key, now, token, result, completedTtlMs, dropPayload)
  local job = leasedJob(key, token)
  if not job then return 'lease-lost' end
  -- The payload stays a field (JSON null): a job without one is unreadable.
  if dropPayload == '1' then
    redis.call('HSET', key, 'payload', 'null')
    redis.call('HDEL', key, 'headers', 'queryParams')
  end
  -- A null result is an absent field; an earlier attempt's error goes (finish clears both with its HDEL).
  if result == '' then
    finish(key, job, 'Completed', now, completedTtlMs, 'result', 'error')
  else
    redis.call('HSET', key, 'result', result)
    finish(key, job, 'Completed', now, completedTtlMs, 'error')
  end
  return 'completed'
end

return eachJob(function(key, from)
  return complete(key, tonumber(ARGV[from]), ARGV[from + 1], ARGV[from + 2], tonumber(ARGV[from + 3]), ARGV[from + 4])
end)
