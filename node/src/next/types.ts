/**
 * The two Next.js cache handler interfaces, as Next.js 16 declares them
 * (`next/dist/server/lib/cache-handlers/types.d.ts` and
 * `next/dist/server/lib/incremental-cache/index.d.ts`), written here so that
 * this package depends on no `next` at all. Only what the handlers read or
 * return is typed closely; what they carry without looking inside is
 * `unknown`, never `any`.
 *
 * @module
 */

/** Milliseconds since the Unix epoch. */
export type Timestamp = number

/** One `'use cache'` entry (Next.js's `CacheEntry`). */
export interface CacheEntry {
  /** The serialized value; read once. `get` returns a new stream every time. */
  value: ReadableStream<Uint8Array>
  /** The entry's own tags (`cacheTag()`), without the request's implicit ones. */
  tags: string[]
  /** Seconds the client router may reuse it; not used for expiry here. */
  stale: number
  /** When the entry was created. */
  timestamp: Timestamp
  /** Seconds after `timestamp` past which the entry must not be used (`cacheLife`'s `expire`). */
  expire: number
  /**
   * Seconds after `timestamp` past which Next.js serves it once more and
   * regenerates it in the background; negative forces that on the next read.
   */
  revalidate: number
}

/** The durations `revalidateTag(tag, profile)` passes on: `expire` in seconds. */
export interface TagDurations {
  expire?: number
}

/** The `cacheHandlers` interface (`'use cache'`, `'use cache: remote'`). */
export interface CacheHandler {
  get(cacheKey: string, softTags: string[]): Promise<CacheEntry | undefined>
  set(cacheKey: string, pendingEntry: Promise<CacheEntry>): Promise<void>
  refreshTags(): Promise<void>
  getExpiration(tags: string[]): Promise<Timestamp>
  updateTags(tags: string[], durations?: TagDurations): Promise<void>
}

/**
 * A value of the incremental cache (ISR pages, route handlers, fetches,
 * images), by its `kind`. The handler stores it whole; the fields it reads
 * are typed, the rest it carries as is (Buffers and Maps included).
 */
export interface IncrementalCacheValue {
  readonly kind: string
  readonly [field: string]: unknown
}

/** A route's lifetime, as Next.js's `CacheControl`: seconds, `false` for never. */
export interface CacheControl {
  revalidate: number | false
  expire: number | undefined
}

/** What `get` of the incremental cache answers (Next.js's `CacheHandlerValue`). */
export interface IncrementalCacheHandlerValue {
  /** When the entry was made; Next.js reckons its age, so its staleness, from it. */
  lastModified: number
  value: IncrementalCacheValue | null
  cacheControl?: CacheControl
}

/** The second argument of the incremental cache's `get`. */
export interface IncrementalGetContext {
  /** `FETCH`, `APP_PAGE`, `APP_ROUTE`, `PAGES` or `IMAGE`. */
  kind: string
  /** A fetch's tags (`next: { tags }`). */
  tags?: string[]
  /** The request's implicit tags (`_N_T_/...`), for fetches. */
  softTags?: string[]
  /** A fetch's revalidate, seconds, or `false`. */
  revalidate?: number | false
  isFallback?: boolean
  isRoutePPREnabled?: boolean
  fetchUrl?: string
  fetchIdx?: number
}

/** The third argument of the incremental cache's `set`. */
export interface IncrementalSetContext {
  /** `true` for a fetch. */
  fetchCache?: boolean
  /** A fetch's tags. */
  tags?: string[]
  /** A route's lifetime (not for fetches). */
  cacheControl?: CacheControl
  kind?: string
  isRoutePPREnabled?: boolean
  isFallback?: boolean
  isImplicitBuildTimeCache?: boolean
  fetchUrl?: string
  fetchIdx?: number
}

/** What Next.js passes to the incremental cache handler's constructor, once per request. */
export interface IncrementalCacheContext {
  dev?: boolean
  serverDistDir?: string
  maxMemoryCacheSize?: number
  fetchCacheKeyPrefix?: string
  revalidatedTags?: string[]
  [field: string]: unknown
}

/** The incremental `cacheHandler` interface, as an instance. */
export interface IncrementalCacheHandler {
  get(cacheKey: string, ctx: IncrementalGetContext): Promise<IncrementalCacheHandlerValue | null>
  set(cacheKey: string, data: IncrementalCacheValue | null, ctx: IncrementalSetContext): Promise<void>
  revalidateTag(tags: string | string[], durations?: TagDurations): Promise<void>
  resetRequestCache(): void
}

/** The incremental `cacheHandler` interface, as the class Next.js constructs per request. */
export type IncrementalCacheHandlerClass = new (context: IncrementalCacheContext) => IncrementalCacheHandler
