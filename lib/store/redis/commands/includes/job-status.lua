-- The statuses as the scripts compare them (JOB_STATUSES in lib/job).
local function isWaiting(status)
  return status == 'Queued' or status == 'Scheduled'
end

local function isTerminal(status)
  return status == 'Completed' or status == 'Failed' or status == 'Canceled'
end

local function isStatus(status)
  return isWaiting(status) or isTerminal(status) or status == 'InProgress'
end
