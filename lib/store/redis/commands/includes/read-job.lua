--- @include "job-status"

-- Why the scripts cannot handle a job table, or nil when they can. They read only status, id, name and,
-- for a live job, seq: payloads, results and every other JSON field stay opaque text here (cjson would
-- cost time in proportion to their size, and refuse JSON nested over 1,000 deep); the codec reads those.
local function unreadableCause(job)
  if not job.status then return "field 'status' is missing" end
  if not isStatus(job.status) then return "status '" .. job.status .. "' is not a job status" end
  if not job.id then return "field 'id' is missing" end
  if not isTerminal(job.status) and not job.seq then return "field 'seq' is missing" end
  return nil
end

-- The job as a table of its fields plus its HGETALL reply; nil when it is missing; nil, nil and the
-- cause when it is unreadable (not a hash, or see unreadableCause). An unreadable job is never handed out.
local function readJob(key)
  local flat = redis.pcall('HGETALL', key)
  if flat.err then return nil, nil, 'the key is not a hash' end
  if #flat == 0 then return nil end
  local job = {}
  for i = 1, #flat, 2 do job[flat[i]] = flat[i + 1] end
  local cause = unreadableCause(job)
  if cause then return nil, nil, cause end
  return job, flat
end
