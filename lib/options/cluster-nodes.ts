/**
 * Whether a value is a Redis Cluster seed node as `store.cluster.nodes` takes it: `'host:port'` (port
 * 1-65535) or `{ host, port }`. Without ioredis, so that the operator CLI checks `--cluster-nodes`
 * before it loads it.
 */
export function isClusterNode(node: unknown): boolean {
  if (typeof node === 'string') {
    const match = /^(.+):(\d{1,5})$/.exec(node);
    return match !== null && isPort(Number(match[2]));
  }
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return false;
  const { host, port } = node as Record<string, unknown>;
  return typeof host === 'string' && host.length > 0 && isPort(port);
}

function isPort(port: unknown): boolean {
  return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65_535;
}
