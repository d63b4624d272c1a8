-- Zset members with equal scores sort by their bytes: a zero-padded submission number in front of the
-- id makes jobs due at the same time come out in submission order.
local function waitingEntry(job)
  return string.rep('0', 16 - string.len(job.seq)) .. job.seq .. ':' .. job.id
end

local function idOfWaitingEntry(entry)
  return string.match(entry, '^%d+:(.+)$')
end
