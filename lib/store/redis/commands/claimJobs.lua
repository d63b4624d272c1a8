--!df flags=allow-undeclared-keys
-- claimJobs: leases up to `limit` due jobs of the given names in one partition (see claim-due.lua, which
-- also says why this script touches job hashes it does not declare and carries the Dragonfly flag above).
-- KEYS (6 + 2 per name): the partition's started, status:Queued, status:Scheduled, status:InProgress,
--   status:Failed, idempotency-expiries; then per name waiting:<name>, leases:<name>.
-- ARGV: the partition's prefix (its event channels'), then the claim's arguments (claimArgs in
--   claim-due.lua): now, leaseMs, workerId, cap, failedTtlMs, the JOB_UNREADABLE error code, the number
--   of names, '1' to be told whether due jobs are left, the number of tokens, then the tokens.
-- Returns claimDue's answer: {claimed, unreadable[, left]}.
--- @include "claim-due"
local K = {
  started = KEYS[1], Queued = KEYS[2], Scheduled = KEYS[3], InProgress = KEYS[4], Failed = KEYS[5],
  idempotencyExpiries = KEYS[6], channels = ARGV[1],
}
return claimDue(K, claimArgs(7, 2))
