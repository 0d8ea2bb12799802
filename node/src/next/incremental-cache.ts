/**
 * Next.js's incremental `cacheHandler` (ISR pages, route handlers, the
 * `fetch` cache) on tagcached.
 *
 * ```js
 * // next.config.mjs
 * cacheHandler: fileURLToPath(import.meta.resolve('tagcached/next/incremental-cache')),
 * cacheMaxMemorySize: 0, // no in-process copy: every instance reads the shared one
 * ```
 *
 * An entry's tags are a fetch's `next: { tags }`, or for a page or a route
 * the tags Next.js lists in its `x-next-cache-tags` header: the tags of
 * everything it rendered and its implicit path tags, so `revalidatePath`
 * reaches it as a tag. A fetch is read with the request's implicit tags as
 * request-scoped tags (protocol.md §8.5), as `'use cache'` entries are.
 *
 * Next.js decides from `lastModified` whether an entry is stale. A hard
 * invalidation makes the entry a miss; a soft one (`revalidateTag(tag,
 * 'max')`) makes it stale on the server, and the reader holding the refresh
 * lease is answered a `lastModified` just past the entry's revalidate
 * time, so Next.js serves it once more and regenerates it in the
 * background. An entry that never revalidates (`revalidate: false`) cannot
 * be told stale that way and is a miss instead.
 *
 * Keys carry the build's id (`.next/BUILD_ID`), so a new deployment does
 * not serve the pages of the last one; tags do not, so `revalidateTag`
 * reaches every deployment's entries.
 *
 * @module
 */

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { encodeRecord, decodeRecord } from './serialize.js'
import { serverKey, serverTags } from './names.js'
import { NextStore } from './store.js'
import type { TagcachedNextOptions } from './options.js'
import type {
  CacheControl,
  IncrementalCacheContext,
  IncrementalCacheHandler,
  IncrementalCacheHandlerClass,
  IncrementalCacheHandlerValue,
  IncrementalCacheValue,
  IncrementalGetContext,
  IncrementalSetContext,
  TagDurations,
} from './types.js'

/** The response header in which Next.js lists a page's or route's tags. */
const TAGS_HEADER = 'x-next-cache-tags'

/** An entry as stored. */
interface StoredRecord {
  readonly key: string
  readonly lastModified: number
  readonly tags: string[]
  readonly cacheControl?: CacheControl
  readonly value: IncrementalCacheValue | null
}

/**
 * An incremental cache handler class on tagcached, configured by
 * `options`, the environment (`TAGCACHED_SERVERS`) filling in what they
 * leave out. Next.js makes an instance per request; they share one client.
 *
 * ```js
 * // incremental-cache.mjs, named in next.config as cacheHandler
 * import { createIncrementalCache } from 'tagcached/next'
 * export default createIncrementalCache({ servers: ['10.0.0.5:11311'] })
 * ```
 */
export function createIncrementalCache(options: TagcachedNextOptions = {}): IncrementalCacheHandlerClass {
  let shared: NextStore | null = null
  const store = (): NextStore => (shared ??= NextStore.for(options))
  const spaces = new Map<string, string>()
  const spaceOf = (serverDistDir: string | undefined): string => {
    const directory = serverDistDir ?? ''
    let space = spaces.get(directory)
    if (space === undefined) {
      space = `ic:${buildId(directory)}`
      spaces.set(directory, space)
    }
    return space
  }

  return class TagcachedIncrementalCache implements IncrementalCacheHandler {
    private readonly store: NextStore
    private readonly space: string

    constructor(context: IncrementalCacheContext) {
      this.store = store()
      this.space = spaceOf(context.serverDistDir)
    }

    async get(cacheKey: string, ctx: IncrementalGetContext): Promise<IncrementalCacheHandlerValue | null> {
      const fetch = ctx.kind === 'FETCH'
      const found = await this.store.read(
        serverKey(this.store.keyPrefix, this.space, cacheKey),
        fetch ? serverTags(ctx.softTags ?? []) : [],
      )
      if (found.state === 'miss') {
        return null
      }
      const record = storedRecord(decodeRecord(found.value))
      if (record === null || record.key !== cacheKey) {
        return null
      }
      // A fetch now tagged with a tag its entry lacks is fetched and stored
      // again, so that invalidating that tag reaches it.
      if (fetch && !(ctx.tags ?? []).every((tag) => record.tags.includes(tag))) {
        return null
      }
      const value: IncrementalCacheHandlerValue = {
        lastModified: record.lastModified,
        value: record.value,
        ...(record.cacheControl === undefined ? {} : { cacheControl: record.cacheControl }),
      }
      if (found.state === 'stale' && found.refresh) {
        const revalidate = fetch ? (ctx.revalidate || fetchRevalidate(record.value)) : record.cacheControl?.revalidate
        if (typeof revalidate !== 'number' || revalidate <= 0) {
          return null
        }
        value.lastModified = Date.now() - (revalidate + 1) * 1000
      }
      return value
    }

    async set(cacheKey: string, data: IncrementalCacheValue | null, ctx: IncrementalSetContext): Promise<void> {
      const tags = ctx.fetchCache === true ? (ctx.tags ?? stringList(data?.['tags'])) : headerTags(data)
      const cacheControl = ctx.fetchCache === true ? undefined : ctx.cacheControl
      const record: StoredRecord = {
        key: cacheKey,
        lastModified: Date.now(),
        tags,
        ...(cacheControl === undefined ? {} : { cacheControl }),
        value: data,
      }
      await this.store.write(serverKey(this.store.keyPrefix, this.space, cacheKey), encodeRecord(record), {
        tags: serverTags(tags),
        ttl: typeof cacheControl?.expire === 'number' ? cacheControl.expire : 0,
      })
    }

    async revalidateTag(tags: string | string[], durations?: TagDurations): Promise<void> {
      await this.store.invalidate(serverTags(typeof tags === 'string' ? [tags] : tags), durations)
    }

    resetRequestCache(): void {
      // Nothing is kept per request.
    }
  }
}

/** The build's id, from `.next/BUILD_ID` beside `.next/server`; empty if there is none. */
function buildId(serverDistDir: string): string {
  if (serverDistDir === '') {
    return ''
  }
  try {
    return readFileSync(join(serverDistDir, '..', 'BUILD_ID'), 'utf8').trim()
  } catch {
    return ''
  }
}

/** A page's or route's tags, from the `x-next-cache-tags` header Next.js gives it. */
function headerTags(data: IncrementalCacheValue | null): string[] {
  const headers = data?.['headers']
  if (headers === null || typeof headers !== 'object') {
    return []
  }
  const header = (headers as Record<string, unknown>)[TAGS_HEADER]
  return typeof header === 'string' ? header.split(',').filter((tag) => tag.length > 0) : []
}

function fetchRevalidate(value: IncrementalCacheValue | null): number | undefined {
  const revalidate = value?.['revalidate']
  return typeof revalidate === 'number' ? revalidate : undefined
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

function storedRecord(record: unknown): StoredRecord | null {
  if (record === null || typeof record !== 'object') {
    return null
  }
  const stored = record as Record<string, unknown>
  const value = stored['value']
  if (
    typeof stored['key'] !== 'string' ||
    typeof stored['lastModified'] !== 'number' ||
    !Array.isArray(stored['tags']) ||
    (value !== null && (typeof value !== 'object' || typeof (value as Record<string, unknown>)['kind'] !== 'string'))
  ) {
    return null
  }
  return stored as unknown as StoredRecord
}

/** The handler class configured from the environment (`TAGCACHED_SERVERS`), for `cacheHandler` in next.config. */
export default createIncrementalCache()
