-- What a fenced transition needs of the job, or nil when the token no longer holds its lease. The name
-- must be the lease's: the caller declared that name's keys.
local function leasedJob(key, token, name)
  local values = redis.pcall('HMGET', key, 'status', 'leaseToken', 'name', 'id', 'seq', 'cancelRequested',
    'idempotencyDigest')
  if values.err or values[1] ~= 'InProgress' or values[2] ~= token or values[3] ~= name then return nil end
  return {
    status = values[1], name = values[3], id = values[4], seq = values[5],
    cancelRequested = values[6], idempotencyDigest = values[7],
  }
end
