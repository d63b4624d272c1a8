import { hash } from 'node:crypto';
import type { JsonValue } from './job.js';

/** JSON with object keys sorted, so that `{a,b}` and `{b,a}` give one fingerprint. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key] as JsonValue)}`).join(',')}}`;
}

/** Identifies a submission for idempotency: same name and payload, same fingerprint. */
export function fingerprintOf(name: string, payload: JsonValue): string {
  // One-shot hash(): no Hash object per submit.
  return hash('sha256', `${name}\0${canonicalJson(payload)}`, 'base64url');
}
