import { hash } from 'node:crypto';
import type { JsonValue } from './job.js';

/** Text written as it is by canonicalJson, told apart from the JSON values still to write. */
class Raw {
  constructor(readonly text: string) {}
}
const COMMA = new Raw(',');
const CLOSE_ARRAY = new Raw(']');
const CLOSE_OBJECT = new Raw('}');

/**
 * JSON with object keys sorted, so that `{a,b}` and `{b,a}` give one fingerprint. Written from a
 * stack of its own, not by recursion: no payload, however deep, overflows the call stack.
 */
export function canonicalJson(value: JsonValue): string {
  let out = '';
  const stack: (JsonValue | Raw)[] = [value];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (item instanceof Raw) out += item.text;
    else if (item === null || typeof item !== 'object') out += JSON.stringify(item);
    else if (Array.isArray(item)) {
      out += '[';
      stack.push(CLOSE_ARRAY);
      for (let i = item.length - 1; i >= 0; i--) {
        stack.push(item[i]!);
        if (i > 0) stack.push(COMMA);
      }
    } else {
      out += '{';
      stack.push(CLOSE_OBJECT);
      const keys = Object.keys(item).sort();
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push(item[keys[i]!]!, new Raw(`${JSON.stringify(keys[i])}:`));
        if (i > 0) stack.push(COMMA);
      }
    }
  }
  return out;
}

/** Identifies a submission for idempotency: same name and payload, same fingerprint. */
export function fingerprintOf(name: string, payload: JsonValue): string {
  // One-shot hash(): no Hash object per submit.
  return hash('sha256', `${name}\0${canonicalJson(payload)}`, 'base64url');
}
