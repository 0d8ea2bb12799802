/**
 * The Next.js cache handlers under measurement, each behind one small
 * interface, driven directly as Next.js 16 drives them (no Next.js server):
 *
 * - `tagcached incremental`: `tagcached/next`'s incremental `cacheHandler`
 *   (ISR pages, route handlers, the fetch cache);
 * - `tagcached use-cache`: `tagcached/next`'s `cacheHandlers` handler
 *   (`'use cache'`), which the Redis handler has no counterpart of;
 * - `fortedigital redis`: `@fortedigital/nextjs-cache-handler`'s
 *   `CacheHandler` with its `redis-strings` handler on node-redis, as its
 *   README's Quick Start sets it up; an incremental `cacheHandler`.
 *
 * Every entry is what a `fetch(url, { next: { tags: ['post:I', 'posts'],
 * revalidate: 3600 } })` stores (or, for `'use cache'`, a function with
 * `cacheTag('post:I', 'posts')`), with a body of {@link BODY_BYTES} bytes.
 *
 * Interface: `set(i)` stores entry `i`; `hit(i)` reads it as Next.js
 * would and says whether the handler answered an entry (not a miss);
 * `invalidate(tag)` is Next.js 16's `updateTag(tag)` (a hard invalidation:
 * what makes entries misses); `flush()` empties the server; `close()`.
 */

import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Client } from 'tagcached'
import { createCacheHandler, createIncrementalCache } from 'tagcached/next'
import { CacheHandler } from '@fortedigital/nextjs-cache-handler'
import createRedisHandler from '@fortedigital/nextjs-cache-handler/redis-strings'
import { createClient } from 'redis'

/** Bytes of each entry's body. */
export const BODY_BYTES = 1024
/** Seconds: each fetch's `next.revalidate`; `'use cache'` entries get it as `revalidate`. */
const REVALIDATE = 3600
/** The tag every entry carries. */
export const SHARED_TAG = 'posts'
/** The tag only entry `i` carries. */
export const ownTag = (i) => `post:${i}`

const body = Buffer.alloc(BODY_BYTES, 'x')
const bodyBase64 = body.toString('base64').slice(0, BODY_BYTES)

/** Next.js's fetch cache key: a SHA-256 of the request, in hex. */
function fetchKey(i) {
  return createHash('sha256').update(`https://api.example.com/posts/${i}`).digest('hex')
}

function tagsOf(i) {
  return [ownTag(i), SHARED_TAG]
}

/** The value Next.js 16 hands an incremental cache for a fetch (`CachedFetchValue`). */
function fetchValue(i) {
  return {
    kind: 'FETCH',
    data: {
      headers: { 'content-type': 'application/json' },
      body: bodyBase64,
      status: 200,
      url: `https://api.example.com/posts/${i}`,
    },
    revalidate: REVALIDATE,
    tags: tagsOf(i),
  }
}

function fetchSetContext(i) {
  return { fetchCache: true, fetchUrl: `https://api.example.com/posts/${i}`, fetchIdx: 0, tags: tagsOf(i), revalidate: REVALIDATE }
}

function fetchGetContext(i) {
  return { kind: 'FETCH', revalidate: REVALIDATE, fetchUrl: `https://api.example.com/posts/${i}`, fetchIdx: 0, tags: tagsOf(i), softTags: [] }
}

/**
 * An incremental cache handler instance, driven as Next.js 16 drives one
 * for fetches: the same calls for every handler measured.
 */
function drivenAsIncrementalCache(name, handler, { flush, close }) {
  return {
    name,
    set: (i) => handler.set(fetchKey(i), fetchValue(i), fetchSetContext(i)),
    hit: async (i) => (await handler.get(fetchKey(i), fetchGetContext(i))) !== null,
    invalidate: (tag) => handler.revalidateTag([tag]),
    flush,
    close,
  }
}

const quiet = (message) => {
  throw new Error(`handler logged: ${message}`)
}

/** `tagcached/next`'s incremental cache handler on the daemon at `address`. */
export function tagcachedIncremental(address) {
  // The handler's client is given, so that it can be closed at the end.
  const client = new Client({ servers: [address] })
  const Handler = createIncrementalCache({ client, log: quiet })
  // Next.js makes one per request; they share the client.
  const handler = new Handler({ dev: false })
  return drivenAsIncrementalCache('tagcached incremental', handler, {
    flush: () => client.flushAll(),
    close: () => client.close(),
  })
}

/** `tagcached/next`'s `cacheHandlers` handler (`'use cache'`) on the daemon at `address`. */
export function tagcachedUseCache(address) {
  const client = new Client({ servers: [address] })
  const handler = createCacheHandler({ client, log: quiet })
  // A `'use cache'` key: the build id, the function's id, its serialized arguments.
  const key = (i) => `["bench","c0ffee${i.toString(16)}",[${i}]]`
  return {
    name: 'tagcached use-cache',
    set: (i) =>
      handler.set(
        key(i),
        Promise.resolve({
          value: new ReadableStream({
            start(controller) {
              controller.enqueue(new Uint8Array(body))
              controller.close()
            },
          }),
          tags: tagsOf(i),
          stale: 300,
          timestamp: Date.now(),
          expire: 31_536_000,
          revalidate: REVALIDATE,
        }),
      ),
    hit: async (i) => {
      const entry = await handler.get(key(i), [])
      if (entry === undefined) return false
      await entry.value.cancel()
      return true
    },
    invalidate: (tag) => handler.updateTags([tag]),
    flush: () => client.flushAll(),
    close: () => client.close(),
  }
}

/**
 * `@fortedigital/nextjs-cache-handler` with `redis-strings` on node-redis,
 * against the Redis at `address`. Its `CacheHandler` is configured once per
 * process (a static hook), so call this once.
 */
export async function fortedigitalRedis(address) {
  const client = createClient({ url: `redis://${address}` })
  await client.connect()
  CacheHandler.onCreation(() => ({ handlers: [createRedisHandler({ client, keyPrefix: 'bench:' })] }))
  // It reads BUILD_ID and the prerender manifest beside serverDistDir; there are none.
  const distDir = mkdtempSync(join(tmpdir(), 'nbench-'))
  const handler = new CacheHandler({ serverDistDir: join(distDir, 'server'), dev: false })
  return drivenAsIncrementalCache('fortedigital redis', handler, {
    flush: () => client.flushAll(),
    close: async () => {
      await client.close()
      rmSync(distDir, { recursive: true, force: true })
    },
  })
}
