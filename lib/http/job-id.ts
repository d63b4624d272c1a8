const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Job ids are UUIDs; anything else is a client mistake (400), not a lookup. */
export function isJobId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
