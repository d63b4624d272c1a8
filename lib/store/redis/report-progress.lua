-- reportProgress: records the handler's progress under its lease.
-- KEYS: store keys, then the job's hash. ARGV: now, token, progress JSON ('' for null).
-- Returns 1 when recorded, 0 when the lease is lost.
local key = KEYS[STORE_KEY_COUNT + 1]
local now, token, progress = tonumber(ARGV[1]), ARGV[2], ARGV[3]

if not leasedJob(key, token) then return 0 end
setJsonField(key, 'progress', progress)
redis.call('HSET', key, 'lastUpdatedAt', now)
return 1
