/**
 * What both Next.js handlers share in one process: one {@link Client}, the
 * read-then-write bookkeeping that makes their stores safe, invalidations,
 * and the few messages they log.
 *
 * **Reads.** Every read asks for stale entries (`allowStale`), carries the
 * request's implicit tags as request-scoped tags (protocol.md §8.5), and asks
 * for the key's refresh lease (§8.4). So one round trip says whether the
 * entry is fresh, stale (a tag of it, or of the request, was invalidated
 * softly) or gone, and, when it is stale or missing, whether this reader is
 * the one to recompute it.
 *
 * **Writes.** A read leaves a *ticket* for its key: the fence of its
 * answer, and the lease if it was granted one. The write of that key that
 * follows (Next.js reads, misses, renders, stores) carries them, so a value
 * rendered from data read before an invalidation of one of its tags is
 * refused (`FENCED`) instead of being stored after it: the stale-set race is
 * closed across instances, which a cache that compares timestamps cannot
 * do. A lease write that lost its lease is retried with the fence alone.
 * The fence covers the entry's own tags; a request's implicit tags are not
 * stored with the entry (the entry serves other paths too), so a
 * `revalidatePath` racing a render is not caught, as with Next.js's own
 * handler.
 *
 * **Failures.** Nothing here throws to Next.js: a read that fails is a miss,
 * a write or an invalidation that fails is dropped (the client owes an
 * invalidation to a server that missed it and delivers it first when the
 * server is back: node/README.md, "Invalidating"). An outage of a server is
 * logged when it starts and when it ends, never per request.
 *
 * @module
 */

import { Client } from '../client.js'
import { UNAVAILABLE_FENCE } from '../commands.js'
import { TagcachedError, UnacknowledgedError } from '../errors.js'
import { resolveSettings, ENV_SERVERS, type NextSettings, type TagcachedNextOptions } from './options.js'
import type { TagDurations } from './types.js'

/** The longest TTL, stale window or soft window the server takes by default (protocol.md §7, `max_ttl`): ten years. */
export const MAX_TTL = 315_360_000
/** Tickets kept at most; the oldest go first. */
const MAX_TICKETS = 10_000
/** A ticket older than this is not used: its read and this write are not one computation. */
const TICKET_LIFETIME_MS = 60_000

/** What a read found. */
export type ReadOutcome =
  | { readonly state: 'fresh'; readonly value: Buffer }
  /** `refresh`: this reader holds the key's refresh lease (or nobody could be asked): it should recompute. */
  | { readonly state: 'stale'; readonly value: Buffer; readonly refresh: boolean }
  | { readonly state: 'miss' }

/** How to store an entry. */
export interface WriteOptions {
  /** The server's tags (see `names.ts`). */
  readonly tags: readonly string[]
  /** Seconds until the entry expires; 0: never. */
  readonly ttl: number
  /** Seconds until the entry turns stale; 0: never. */
  readonly staleAfter?: number
}

interface Ticket {
  readonly fence: bigint
  readonly lease: bigint | null
  readonly at: number
}

const MISS: ReadOutcome = { state: 'miss' }
const LOG_PREFIX = '[tagcached/next]'

/** Seconds clamped to what the server takes. */
export function clampSeconds(seconds: number): number {
  if (!Number.isFinite(seconds)) {
    return seconds > 0 ? MAX_TTL : 0
  }
  return Math.min(Math.max(0, Math.ceil(seconds)), MAX_TTL)
}

/**
 * The soft window for Next.js's `durations`, in seconds: 0 (hard) without them, their
 * `expire` seconds with them (0: hard), for ever (the server's longest)
 * when they give no `expire`, as Next.js's handler never expires such a tag.
 */
export function softWindow(durations: TagDurations | undefined): number {
  if (durations === undefined) {
    return 0
  }
  return durations.expire === undefined ? MAX_TTL : clampSeconds(durations.expire)
}

/** One process's connection to tagcached for Next.js, shared by its handlers. */
export class NextStore {
  /** Put before every key. */
  readonly keyPrefix: string
  private readonly client: Client | null
  private readonly log: (message: string) => void
  private readonly tickets = new Map<string, Ticket>()
  /** Invalidations asked for in the current tick, by mode and tags. */
  private batch: Map<string, Promise<void>> | null = null
  /** The servers found unreachable and not heard from since. */
  private readonly unreachable = new Set<string>()
  private readonly logged = new Set<string>()

  private constructor(settings: NextSettings) {
    this.keyPrefix = settings.keyPrefix
    this.log = (message) => settings.log(`${LOG_PREFIX} ${message}`)
    let client = settings.client
    if (client === null && settings.servers.length > 0) {
      try {
        client = new Client({ ...settings.clientOptions, servers: settings.servers })
      } catch (error) {
        this.log(`cannot use servers ${settings.servers.join(',')}: ${describe(error)}; Next.js caches nothing in this process`)
      }
    } else if (client === null) {
      this.log(`no servers (${ENV_SERVERS} is not set): Next.js caches nothing in this process`)
    }
    this.client = client
  }

  /**
   * The store for `options` (the environment filling in what they leave
   * out): one per configuration (and client, if one is given) per process,
   * so that both handlers, and every request's incremental cache handler,
   * share one client, one set of tickets and one batch of invalidations.
   */
  static for(options: TagcachedNextOptions = {}): NextStore {
    const settings = resolveSettings(options)
    const registry = storeRegistry(settings.client)
    let store = registry.get(settings.identity)
    if (store === undefined) {
      store = new NextStore(settings)
      registry.set(settings.identity, store)
    }
    return store
  }

  /** The client, or `null` when nothing is configured (every read then misses). */
  get tagcached(): Client | null {
    return this.client
  }

  /**
   * Reads `key`, checking `requestTags` against it as if it carried them,
   * and leaves the ticket for the write that may follow. Never rejects.
   */
  async read(key: string, requestTags: readonly string[]): Promise<ReadOutcome> {
    if (this.client === null) {
      return MISS
    }
    try {
      const found = await this.client.lookup(key, {
        allowStale: true,
        lease: true,
        ...(requestTags.length > 0 ? { requestTags } : {}),
      })
      const server = this.client.serverFor(key)
      if (found.fence === UNAVAILABLE_FENCE) {
        // The client answered for a server it has marked down.
        this.unreachableServer(server, 'marked down after repeated failures')
        return MISS
      }
      this.answered(server)
      switch (found.status) {
        case 'HIT':
          this.tickets.delete(key)
          return { state: 'fresh', value: found.item.value }
        case 'STALE':
          this.remember(key, found.fence, found.lease)
          return { state: 'stale', value: found.item.value, refresh: found.lease !== null }
        case 'MISS':
        case 'HOT_MISS':
          this.remember(key, found.fence, found.lease)
          return MISS
      }
    } catch (error) {
      this.failed(error)
      return MISS
    }
  }

  /**
   * Stores `value` under `key`, with the ticket of the read before it, if
   * any. Resolves when it is stored or refused; never rejects.
   */
  async write(key: string, value: Buffer, options: WriteOptions): Promise<void> {
    if (this.client === null) {
      return
    }
    const ticket = this.take(key)
    const base = {
      tags: options.tags,
      ttl: clampSeconds(options.ttl),
      ...(options.staleAfter !== undefined && options.staleAfter > 0 ? { staleAfter: clampSeconds(options.staleAfter) } : {}),
    }
    try {
      let result = await this.client.set(key, value, {
        ...base,
        ...(ticket === null ? {} : { fence: ticket.fence }),
        ...(ticket?.lease != null ? { lease: ticket.lease } : {}),
      })
      if (result.status === 'LEASE_LOST' && ticket !== null) {
        // Someone else refreshed the key or took the lease over; the fence
        // still proves this value is not older than an invalidation.
        result = await this.client.set(key, value, { ...base, fence: ticket.fence })
      }
      this.answered(this.client.serverFor(key))
    } catch (error) {
      this.failed(error)
    }
  }

  /**
   * Forgets the ticket of `key` without storing: gives its lease up at once
   * (protocol.md §8.4) so that another instance need not wait the lease time
   * to refresh the key.
   */
  release(key: string): void {
    const ticket = this.take(key)
    if (this.client === null || ticket === null || ticket.lease === null) {
      return
    }
    const client = this.client
    client.set(key, '', { cas: 0n, lease: ticket.lease }).then(
      () => this.answered(client.serverFor(key)),
      (error: unknown) => this.failed(error),
    )
  }

  /**
   * Invalidates `tags` (server tags) on every server, as Next.js's
   * `durations` say (see {@link softWindow}).
   * Identical invalidations asked for in the same tick are sent once: Next.js
   * hands a `revalidateTag` to every cache handler, and both of ours share
   * this store. Sending once is safe because none of them has been sent
   * before the last is asked for. Never rejects.
   */
  invalidate(tags: readonly string[], durations: TagDurations | undefined): Promise<void> {
    if (this.client === null || tags.length === 0) {
      return Promise.resolve()
    }
    const window = softWindow(durations)
    const batchKey = `${window}\n${tags.join('\n')}`
    let batch = this.batch
    if (batch === null) {
      const fresh = new Map<string, Promise<void>>()
      batch = fresh
      this.batch = fresh
      queueMicrotask(() => {
        if (this.batch === fresh) {
          this.batch = null
        }
      })
    }
    const pending = batch.get(batchKey)
    if (pending !== undefined) {
      return pending
    }
    const client = this.client
    const sent = client.invalidateTags(tags, window === 0 ? {} : { soft: true, expire: window }).then(
      () => client.servers.forEach((server) => this.answered(server)),
      (error: unknown) => this.failed(error),
    )
    batch.set(batchKey, sent)
    return sent
  }

  /** Logs `message` once per process under `kind`. */
  private logOnce(kind: string, message: string): void {
    if (!this.logged.has(kind)) {
      this.logged.add(kind)
      this.log(message)
    }
  }

  private remember(key: string, fence: bigint, lease: bigint | null): void {
    this.tickets.delete(key)
    this.tickets.set(key, { fence, lease, at: Date.now() })
    if (this.tickets.size > MAX_TICKETS) {
      const oldest = this.tickets.keys().next()
      if (oldest.done !== true) {
        this.tickets.delete(oldest.value)
      }
    }
  }

  private take(key: string): Ticket | null {
    const ticket = this.tickets.get(key)
    if (ticket === undefined) {
      return null
    }
    this.tickets.delete(key)
    return Date.now() - ticket.at <= TICKET_LIFETIME_MS ? ticket : null
  }

  /** `server` answered: if it was unreachable, its outage is over. */
  private answered(server: string): void {
    if (this.unreachable.delete(server)) {
      this.log(`${server} answers again: caching resumes`)
    }
  }

  /** An outage of `server` is logged when it starts, not again until it has ended. */
  private unreachableServer(server: string, reason: string): void {
    if (!this.unreachable.has(server)) {
      this.unreachable.add(server)
      this.log(`${server} is unreachable (${reason}): what it holds is a miss, pages render uncached until it is back`)
    }
  }

  /** Outages are logged per server as they start; any other failure once per kind. */
  private failed(error: unknown): void {
    const failures = error instanceof UnacknowledgedError ? error.failures.map((failure) => failure.error) : [error]
    for (const failure of failures) {
      if (failure instanceof TagcachedError && failure.unavailable) {
        this.unreachableServer(failure.server ?? 'tagcached', reasonOf(failure))
      } else {
        const kind = failure instanceof TagcachedError ? `${failure.code}:${reasonOf(failure).replace(/\d+/g, 'N')}` : describe(failure)
        this.logOnce(kind, `a cache request failed: ${describe(failure)}`)
      }
    }
  }
}

/** An error's message without the server it starts with. */
function reasonOf(error: TagcachedError): string {
  const prefix = error.server === null ? '' : `${error.server}: `
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The stores of handlers given `client`, or of those that make their own
 * (`null`): one registry per process, on `globalThis`, so that two copies of
 * this module share it.
 */
function storeRegistry(client: Client | null): Map<string, NextStore> {
  const key = Symbol.for('tagcached.next.stores')
  const holder = globalThis as unknown as Record<symbol, Registries | undefined>
  const registries = (holder[key] ??= { own: new Map(), byClient: new WeakMap() })
  if (client === null) {
    return registries.own
  }
  let registry = registries.byClient.get(client)
  if (registry === undefined) {
    registry = new Map()
    registries.byClient.set(client, registry)
  }
  return registry
}

interface Registries {
  /** Stores with a client of their own, by configuration. */
  readonly own: Map<string, NextStore>
  /** Stores on a client given in the options, by client, then configuration. */
  readonly byClient: WeakMap<Client, Map<string, NextStore>>
}
