-- listJobs: jobs in one status, live ones in submission order, terminal ones most recently finished first.
-- KEYS: store keys. ARGV: status, limit, now.
-- Returns {<fields>, ...}; unreadable jobs are left out.
local status, limit, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

pruneExpired(now)
local range = isTerminal(status) and 'ZREVRANGE' or 'ZRANGE'
local jobs = {}
for _, id in ipairs(redis.call(range, statusIndex(status), 0, limit - 1)) do
  local _, flat = readJob(jobKey(id))
  if flat then jobs[#jobs + 1] = flat end
end
return jobs
