-- stats: exact counts per status and the age of the job due the longest.
-- KEYS: store keys. ARGV: now.
-- Returns {{status, count, ...}, age in ms or nil when nothing is due}.
local now = tonumber(ARGV[1])

pruneExpired(now)
local counts = {}
for _, status in ipairs({ 'Queued', 'Scheduled', 'InProgress', 'Completed', 'Failed', 'Canceled' }) do
  counts[#counts + 1] = status
  counts[#counts + 1] = redis.call('ZCARD', statusIndex(status))
end
local head = redis.call('ZRANGE', WAITING, 0, 0, 'WITHSCORES')
local oldestDueAgeMs = false
if head[2] and tonumber(head[2]) <= now then oldestDueAgeMs = now - tonumber(head[2]) end
return { counts, oldestDueAgeMs }
