/** `http.maxJsonDepth` by default: far beyond what request payloads need, far below any stack limit. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/** The highest `http.maxJsonDepth`: Lua cjson, which Redis scripts use, decodes at most 1,000 levels. */
export const MAX_JSON_DEPTH_LIMIT = 1000;

/** What is wrong with a JSON input (see jsonInputProblem), in words for a client or a developer. */
export type JsonInputProblem = { kind: 'depth'; detail: string } | { kind: 'proto'; detail: string };

/**
 * The first reason to refuse a payload: nested deeper than `maxDepth` (a scalar is depth 0, `{}` and
 * `[]` depth 1), or an object with an own `__proto__` key (copied by assignment, it would set the
 * copy's prototype). Null when there is none. One pass, without recursion, so that any input, however
 * deep or cyclic, is answered without overflowing the stack: depth first, the first path deeper than
 * the limit stops the walk.
 */
export function jsonInputProblem(value: unknown, maxDepth: number): JsonInputProblem | null {
  if (value === null || typeof value !== 'object') return null;
  const nodes: object[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const depth = depths.pop()!;
    if (depth > maxDepth) {
      return {
        kind: 'depth',
        detail: `The payload is nested deeper than ${maxDepth} levels, the limit set by http.maxJsonDepth: send a flatter payload, or raise http.maxJsonDepth (at most ${MAX_JSON_DEPTH_LIMIT}).`,
      };
    }
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item: unknown = node[i];
        if (item !== null && typeof item === 'object') {
          nodes.push(item);
          depths.push(depth + 1);
        }
      }
      continue;
    }
    if (Object.hasOwn(node, '__proto__')) {
      return {
        kind: 'proto',
        detail:
          'The payload has a "__proto__" key, which is refused (it could change an object\'s prototype): rename the key.',
      };
    }
    for (const key of Object.keys(node)) {
      const item = (node as Record<string, unknown>)[key];
      if (item !== null && typeof item === 'object') {
        nodes.push(item);
        depths.push(depth + 1);
      }
    }
  }
  return null;
}
