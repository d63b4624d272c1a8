import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { decoderFor } from '../../lib/http/fastify-routes.js';

/** Runs the library's preParsing hook on a gzip body and returns the stream it hands to Fastify. */
function decodedStream(body: Buffer, limitBytes: number): Promise<Readable> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < body.length; at += 1024) chunks.push(body.subarray(at, at + 1024));
  const payload = Readable.from(chunks);
  const headers = { 'content-encoding': 'gzip', 'content-length': String(body.length) };
  return new Promise((resolve, reject) =>
    decoderFor(limitBytes)({ headers, raw: { headers } } as never, undefined, payload, (error, decoded) =>
      error ? reject(error) : resolve(decoded!),
    ),
  );
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('the Fastify body decoder (preParsing)', () => {
  it('hands over every decoded byte to a reader that starts late (an async hook of the app ran in between)', async () => {
    const text = JSON.stringify({ data: 'x'.repeat(200_000) });
    const decoded = await decodedStream(gzipSync(text), 1_000_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const read = await readAll(decoded);
    expect(read.length).toBe(text.length);
    expect(read === text).toBe(true);
  });

  it('stops inflating past the limit (a compression bomb) and counts the encoded bytes received', async () => {
    const bomb = gzipSync('0'.repeat(5_000_000));
    const decoded = (await decodedStream(bomb, 10_000)) as Readable & { receivedEncodedLength: number };
    let decodedBytes = 0;
    for await (const chunk of decoded) decodedBytes += (chunk as Buffer).length;
    // The limit and at most the one chunk that went past it.
    expect(decodedBytes).toBeLessThanOrEqual(10_000 + 64 * 1024);
    expect(decoded.receivedEncodedLength).toBeGreaterThan(0);
    expect(decoded.receivedEncodedLength).toBeLessThanOrEqual(bomb.length);
  });
});

describe('the Fastify body decoder on a body that does not inflate', () => {
  it('fails the stream it hands to Fastify with the decoder error, once, and raises nothing unhandled', async () => {
    const decoded = await decodedStream(Buffer.from('{"a":1} is not gzip'), 1_000_000);
    await expect(readAll(decoded)).rejects.toThrow(/incorrect header check/);
  });
});

describe('the Fastify body decoder after Fastify stopped reading', () => {
  it('raises nothing unhandled when the body fails to inflate after its reader left', async () => {
    const decoded = await decodedStream(Buffer.from('{"a":1} is not gzip'), 1_000_000);
    // No reader at all, as when Fastify answered before reading the body: the error is kept inside.
    const closed = new Promise((resolve) => decoded.once('close', resolve));
    decoded.resume();
    await closed;
    expect(decoded.destroyed).toBe(true);
  });
});
