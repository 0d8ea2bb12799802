/**
 * `tagcached/next`: Next.js 16's two cache handler interfaces on tagcached,
 * so that every instance of an app shares one cache and one
 * `revalidateTag`.
 *
 * - `tagcached/next/cache-handlers`: `cacheHandlers` (`'use cache'`), the
 *   handler configured from `TAGCACHED_SERVERS` as its default export;
 *   {@link createCacheHandler} for one configured in code.
 * - `tagcached/next/incremental-cache`: `cacheHandler` (ISR pages, route
 *   handlers, `fetch`), likewise; {@link createIncrementalCache}.
 *
 * Files, each one idea: `types.ts` (Next.js's interfaces), `options.ts`
 * (configuration), `names.ts` (keys and tags as the server takes them),
 * `serialize.ts` (an entry's bytes), `store.ts` (the client both handlers
 * share: reads, fenced writes, invalidations, the outage log), then one file
 * per handler.
 *
 * @module
 */

export { createCacheHandler } from './cache-handlers.js'
export { createIncrementalCache } from './incremental-cache.js'
export { DEFAULT_KEY_PREFIX, ENV_AUTH_TOKEN, ENV_KEY_PREFIX, ENV_SERVERS, type TagcachedNextOptions } from './options.js'
export type {
  CacheControl,
  CacheEntry,
  CacheHandler,
  IncrementalCacheContext,
  IncrementalCacheHandler,
  IncrementalCacheHandlerClass,
  IncrementalCacheHandlerValue,
  IncrementalCacheValue,
  IncrementalGetContext,
  IncrementalSetContext,
  TagDurations,
  Timestamp,
} from './types.js'
