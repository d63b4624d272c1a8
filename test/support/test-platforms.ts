import type { AbstractHttpAdapter } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { STORE_KINDS, type StoreKind } from './test-stores.js';

export type HttpPlatform = 'express' | 'fastify';

/** Every HTTP platform the e2e suites run on. */
export const PLATFORMS: readonly HttpPlatform[] = ['express', 'fastify'];

/** Every platform with every store, for `describe.each(PLATFORMS_AND_STORES)('... (%s, %s store)')`. */
export const PLATFORMS_AND_STORES: readonly (readonly [HttpPlatform, StoreKind])[] = PLATFORMS.flatMap((platform) =>
  STORE_KINDS.map((store) => [platform, store] as const),
);

/** A fresh adapter: a Nest app takes one of its own. */
export function httpAdapter(platform: HttpPlatform): AbstractHttpAdapter {
  return platform === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
}
