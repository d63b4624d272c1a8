-- completeJob: the attempt succeeded. Completion wins over a cancellation requested meanwhile.
-- KEYS: store keys, then the job's hash. ARGV: now, token, result JSON ('' for null), completedTtlMs.
-- Returns 'completed' | 'lease-lost'.
local key = KEYS[STORE_KEY_COUNT + 1]
local now, token, result, completedTtlMs = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])

local job = leasedJob(key, token)
if not job then return 'lease-lost' end
-- A null result is an absent field; an earlier attempt's error goes (finish clears both with its HDEL).
if result == '' then
  finish(key, job, 'Completed', now, completedTtlMs, 'result', 'error')
else
  redis.call('HSET', key, 'result', result)
  finish(key, job, 'Completed', now, completedTtlMs, 'error')
end
return 'completed'
