import { crc32 } from 'node:zlib';

/** Redis Cluster's slot count. */
const SLOTS = 16384;

/** CRC16-XMODEM, the checksum Redis Cluster hashes keys with. */
const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

/** The Cluster slot of a hash tag's content (the text between the braces). */
export function slotOfTag(tag: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tag, 'utf8')) crc = ((crc << 8) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!) & 0xffff;
  return crc % SLOTS;
}

/** The Cluster slot of a key: of its hash tag (the text between the first `{` and the next `}`) when it has one. */
export function slotOfKey(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return slotOfTag(close > open + 1 ? key.slice(open + 1, close) : key);
}

/**
 * The key prefix of each of `count` partitions of the store under `keyPrefix` (which holds one
 * `{tag}`). One partition keeps `keyPrefix` as it is (0.1.0's layout used it). With more, partition k's
 * tag is `<tag>:k` (or `<tag>:k.s`, the smallest s that fits) chosen so that its slot lies in the k-th
 * of `count` equal ranges of the slot space: partitions spread evenly over the slots, so a Cluster whose
 * masters hold equal slot ranges, with `count` a multiple of their number, gives each master the same
 * number of partitions.
 */
export function partitionPrefixes(keyPrefix: string, count: number): string[] {
  if (count === 1) return [keyPrefix];
  const open = keyPrefix.indexOf('{');
  const close = keyPrefix.indexOf('}', open + 1);
  const [before, tag, after] = [keyPrefix.slice(0, open + 1), keyPrefix.slice(open + 1, close), keyPrefix.slice(close)];
  const prefixes: string[] = [];
  for (let k = 0; k < count; k++) {
    const [from, to] = [Math.floor((k * SLOTS) / count), Math.floor(((k + 1) * SLOTS) / count)];
    for (let s = 0; ; s++) {
      const candidate = s === 0 ? `${tag}:${k}` : `${tag}:${k}.${s}`;
      const slot = slotOfTag(candidate);
      if (slot >= from && slot < to) {
        prefixes.push(`${before}${candidate}${after}`);
        break;
      }
    }
  }
  return prefixes;
}

/** The partition a job id (or an idempotency digest) belongs to. */
export function partitionOf(text: string, count: number): number {
  return count === 1 ? 0 : crc32(text) % count;
}
