/**
 * Next.js's `cacheHandlers` (`'use cache'`, `'use cache: remote'`) on
 * tagcached: one entry per key on the server, with its tags, shared by every
 * instance of the app.
 *
 * ```js
 * // next.config.mjs
 * const handler = fileURLToPath(import.meta.resolve('tagcached/next/cache-handlers'))
 * export default { cacheComponents: true, cacheHandlers: { default: handler, remote: handler } }
 * ```
 *
 * Next.js's rules, as its built-in handler keeps them:
 * - `get` waits for a `set` of the same key still running in this process,
 *   and returns a new stream every time;
 * - an entry with an expired tag is a miss; one with a stale tag is
 *   returned with `revalidate: -1`, so Next.js serves it once more and
 *   regenerates it in the background;
 * - `set` stores the entry's tags, `timestamp`, `revalidate`, `expire` and
 *   `stale` with its bytes, with `expire` as the TTL (and `revalidate` as
 *   the server's stale point), and does not store `expire: 0` entries,
 *   which are dynamic;
 * - `updateTags(tags)` invalidates hard; `updateTags(tags, { expire: N })`
 *   softly, stale for N seconds (`revalidateTag(tag, 'max')`: a year).
 *
 * **Soft tags are checked by the server.** The request's implicit tags
 * (`_N_T_/blog/layout`, ... from `revalidatePath`) go with each read as
 * request-scoped tags (protocol.md §8.5), and `getExpiration` answers
 * `Infinity`, which tells Next.js so. The alternative, `getExpiration`
 * through TAG_STATUS, costs a round trip to *every* server per request
 * before the first read, compares the server's wall clock with this
 * process's `timestamp` (skew between hosts then revives or kills
 * entries), and cannot say stale from expired per entry. Request-scoped
 * tags cost a few bytes on a read that is made anyway, are compared by
 * invalidation sequence on the server that holds the entry, and a soft
 * `revalidatePath` makes entries stale rather than gone, as for any tag.
 *
 * One thing tagcached adds: the server grants a stale entry's *refresh
 * lease* to one reader across all instances. That reader gets
 * `revalidate: -1`; the others get the entry as stored while it refreshes,
 * so a soft invalidation costs one regeneration, not one per instance.
 *
 * @module
 */

import { encodeRecord, decodeRecord } from './serialize.js'
import { serverKey, serverTags } from './names.js'
import { NextStore } from './store.js'
import type { TagcachedNextOptions } from './options.js'
import type { CacheEntry, CacheHandler, TagDurations, Timestamp } from './types.js'

/** The key namespace of `'use cache'` entries (`next:uc:...`). */
const SPACE = 'uc'

/** An entry as stored: Next.js's fields and key, with the bytes of its stream. */
interface StoredEntry {
  readonly key: string
  readonly tags: string[]
  readonly stale: number
  readonly timestamp: Timestamp
  readonly expire: number
  readonly revalidate: number
  readonly value: Buffer
}

/**
 * A `cacheHandlers` handler on tagcached, configured by `options`, the
 * environment (`TAGCACHED_SERVERS`) filling in what they leave out.
 * Connects nothing until its first use.
 *
 * ```js
 * // cache-handler.mjs, named in next.config as cacheHandlers.default
 * import { createCacheHandler } from 'tagcached/next'
 * export default createCacheHandler({ servers: ['10.0.0.5:11311', '10.0.0.6:11311'] })
 * ```
 */
export function createCacheHandler(options: TagcachedNextOptions = {}): CacheHandler {
  let shared: NextStore | null = null
  const store = (): NextStore => (shared ??= NextStore.for(options))
  /** `set`s of this process not yet stored, by Next.js's key. */
  const pendingSets = new Map<string, Promise<void>>()

  return {
    async get(cacheKey: string, softTags: string[]): Promise<CacheEntry | undefined> {
      const pending = pendingSets.get(cacheKey)
      if (pending !== undefined) {
        await pending
      }
      const cache = store()
      const found = await cache.read(serverKey(cache.keyPrefix, SPACE, cacheKey), serverTags(softTags))
      if (found.state === 'miss') {
        return undefined
      }
      const entry = storedEntry(decodeRecord(found.value))
      if (entry === null || entry.key !== cacheKey) {
        return undefined
      }
      return {
        value: streamOf(entry.value),
        tags: entry.tags,
        stale: entry.stale,
        timestamp: entry.timestamp,
        expire: entry.expire,
        revalidate: found.state === 'stale' && found.refresh ? -1 : entry.revalidate,
      }
    },

    async set(cacheKey: string, pendingEntry: Promise<CacheEntry>): Promise<void> {
      let settle = (): void => {}
      const settled = new Promise<void>((resolve) => {
        settle = resolve
      })
      pendingSets.set(cacheKey, settled)
      const cache = store()
      const key = serverKey(cache.keyPrefix, SPACE, cacheKey)
      try {
        const entry = await pendingEntry
        // Dynamic: Next.js renders it on every read, so storing it is a
        // wasted write. The dev server keeps it (it serves it across reloads).
        if (entry.expire === 0 && process.env['__NEXT_DEV_SERVER'] === undefined) {
          cache.release(key)
          return
        }
        const value = await bytesOf(entry.value)
        const stored: StoredEntry = {
          key: cacheKey,
          tags: entry.tags,
          stale: entry.stale,
          timestamp: entry.timestamp,
          expire: entry.expire,
          revalidate: entry.revalidate,
          value,
        }
        await cache.write(key, encodeRecord(stored), {
          tags: serverTags(entry.tags),
          ttl: entry.expire,
          ...(entry.revalidate > 0 && entry.revalidate < entry.expire ? { staleAfter: entry.revalidate } : {}),
        })
      } catch {
        // The entry failed, or its stream did: nothing is stored, as Next.js's handler does.
        cache.release(key)
      } finally {
        if (pendingSets.get(cacheKey) === settled) {
          pendingSets.delete(cacheKey)
        }
        settle()
      }
    },

    async refreshTags(): Promise<void> {
      // Nothing is kept here to refresh: every read asks the server.
    },

    async getExpiration(_tags: string[]): Promise<Timestamp> {
      // Infinity: "pass the soft tags to `get`", which checks them on the server.
      return Infinity
    },

    async updateTags(tags: string[], durations?: TagDurations): Promise<void> {
      await store().invalidate(serverTags(tags), durations)
    },
  }
}

function storedEntry(record: unknown): StoredEntry | null {
  if (record === null || typeof record !== 'object') {
    return null
  }
  const entry = record as Record<string, unknown>
  const numbers = [entry['stale'], entry['timestamp'], entry['expire'], entry['revalidate']]
  if (
    typeof entry['key'] !== 'string' ||
    !Array.isArray(entry['tags']) ||
    !entry['tags'].every((tag) => typeof tag === 'string') ||
    !numbers.every((number) => typeof number === 'number') ||
    !Buffer.isBuffer(entry['value'])
  ) {
    return null
  }
  return entry as unknown as StoredEntry
}

function streamOf(bytes: Buffer): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes)
      controller.close()
    },
  })
}

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  for (;;) {
    const { done, value } = await reader.read()
    if (done) {
      return Buffer.concat(chunks)
    }
    chunks.push(value)
  }
}

/** The handler configured from the environment (`TAGCACHED_SERVERS`), for `cacheHandlers` in next.config. */
export default createCacheHandler()
