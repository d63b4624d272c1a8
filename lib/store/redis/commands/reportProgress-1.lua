-- reportProgress: records the handler's progress under its lease.
-- KEYS: the job's hash. ARGV: now, token, name, progress JSON ('' for null).
-- Returns 1 when recorded, 0 when the lease is lost.
--- @include "leased-job"
local key = KEYS[1]
local now, token, name, progress = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

if not leasedJob(key, token, name) then return 0 end
-- JSON values arrive encoded; '' stands for null, stored as an absent field.
if progress == '' then
  redis.call('HDEL', key, 'progress')
  redis.call('HSET', key, 'lastUpdatedAt', now)
else
  redis.call('HSET', key, 'progress', progress, 'lastUpdatedAt', now)
end
return 1
