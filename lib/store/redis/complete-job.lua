-- completeJob: the attempt succeeded. Completion wins over a cancellation requested meanwhile.
-- KEYS: store keys, then the job's hash. ARGV: now, token, result JSON ('' for null), completedTtlMs.
-- Returns 'completed' | 'lease-lost'.
local key = KEYS[STORE_KEY_COUNT + 1]
local now, token, result, completedTtlMs = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])

local job = leasedJob(key, token)
if not job then return 'lease-lost' end
setJsonField(key, 'result', result)
redis.call('HDEL', key, 'error')
finish(key, job, 'Completed', now, completedTtlMs)
return 'completed'
