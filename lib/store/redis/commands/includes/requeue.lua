--- @include "leave-status"

-- InProgress -> Queued, due at once (release, recovery): not a failed attempt. The caller publishes.
-- The job was due before anything submitted since, so it goes to the head of its name's queue: it takes
-- the due time of the job due the longest, when that one is due already (the oldest waiting age stays
-- what it was), else now. Among jobs due at the same time, submission order decides. `headHint` is the
-- due time of the name's head over the other partitions ('' when there are none).
local function requeue(K, key, job, now, headHint)
  leaveStatus(K, job)
  dropLease(key, 'startedAt', 'retryDelayUntil')
  redis.call('HSET', key, 'status', 'Queued', 'lastUpdatedAt', now)
  redis.call('ZADD', K.Queued, now, job.id)
  local headDueAt = tonumber(redis.call('ZRANGE', K.waiting, 0, 0, 'WITHSCORES')[2])
  local hint = tonumber(headHint)
  if hint and (not headDueAt or hint < headDueAt) then headDueAt = hint end
  redis.call('ZADD', K.waiting, headDueAt and headDueAt < now and headDueAt or now, waitingEntry(job))
end
