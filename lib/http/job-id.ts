import { createHash } from 'node:crypto';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Job ids are UUIDs; anything else is a client mistake (400), not a lookup. */
export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** Namespace of the name-based (v5) ids below; fixed, so that a repeat maps to the same id everywhere. */
const OWNER_SCOPE_NAMESPACE = Buffer.from('6f1d2c3a8b7e4f5d9a0c1b2e3d4f5a6b', 'hex');

/**
 * The job id of a client-chosen id submitted by an owner: a UUID v5 of the owner and the chosen id. So
 * each owner has its own ids: a repeat by the same owner finds the same job, another owner's same id is
 * another job, and no answer tells one owner that an id of another exists (or lets it take the id first).
 */
export function ownerScopedJobId(owner: string, chosenId: string): string {
  const hash = createHash('sha1')
    .update(OWNER_SCOPE_NAMESPACE)
    .update(`${owner}\u0000${chosenId.toLowerCase()}`)
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
