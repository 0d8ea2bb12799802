/**
 * {@link Client}: one cache over one or several tagcached servers, with
 * pooled, pipelined, shard-aware connections. What an application holds,
 * and shares across every request it serves.
 *
 * @module
 */

import * as commands from './commands.js'
import type {
  InvalidateOptions,
  Item,
  Key,
  Lookup,
  LookupOptions,
  ReadOptions,
  SetOptions,
  SetResult,
  TagReport,
  Value,
} from './commands.js'
import { UNAVAILABLE_FENCE, keyBytes } from './commands.js'
import {
  checkMillis,
  connectionSettings,
  parseAddress,
  positiveInteger,
  type Connection,
  type TlsOptions,
} from './connection.js'
import {
  ClosedError,
  InvalidArgumentError,
  ServerDownError,
  TagcachedError,
  UnacknowledgedError,
  type ServerFailure,
} from './errors.js'
import { KeyHash, Placement } from './placement.js'
import { ServerPool, now, type Lanes } from './pool.js'

/** Settings for a {@link Client}. Only `servers` is required; times are milliseconds. */
export interface ClientOptions {
  /**
   * The servers, each `host:port` (`[v6]:port`). A server's string is also
   * its identity for key placement (protocol.md §10): every client of a
   * cluster, in any language, must spell each server the same way. The
   * order does not matter; a server given twice is refused.
   */
  readonly servers: readonly string[]
  /** The name sent in HELLO, for the servers' logs; default `tagcached-node/<version>`. */
  readonly clientName?: string
  /** Connections per lane (per server shard when shard-aware, else per server); default 1. */
  readonly poolSize?: number
  /**
   * Whether to open a lane per server shard and send each key to the
   * thread that owns it (protocol.md §9), where the server offers it;
   * default true.
   */
  readonly shardAware?: boolean
  /** Bound on opening a connection (TCP connect and HELLO); default 2000. */
  readonly connectTimeout?: number
  /** Bound on each request, from the call until its answer; default 1000; 0 for none. */
  readonly requestTimeout?: number
  /** Requests in flight on one connection before more wait for room; default 1024. */
  readonly queueDepth?: number
  /** Consecutive failures (overlapping ones count once) that mark a server down; default 3. */
  readonly failureThreshold?: number
  /** The first wait before reconnecting after a failed connect, or probing a server marked down; default 50. */
  readonly backoffMin?: number
  /** The longest such wait; the wait doubles on each further failure up to it; default 5000. */
  readonly backoffMax?: number
  /**
   * The token every connection (pooled, shard-aware, reconnected) sends
   * with AUTH right after HELLO when the server requires authentication
   * (protocol.md §6.12). A refused token fails requests with
   * {@link AuthenticationError}, naming the server.
   */
  readonly authToken?: string | Buffer
  /**
   * Connect to every server with TLS (protocol.md §1): `true` verifies
   * each against Node's CA certificates and the host of its address; a
   * {@link TlsOptions} gives the CA, a client certificate, the name to
   * check. Default: plain TCP.
   */
  readonly tls?: boolean | TlsOptions
}

/** A server's state as a client sees it; see {@link Client.serverStatus}. */
export interface ServerStatus {
  /** The server, as given. */
  readonly server: string
  /** Whether it is marked down. */
  readonly down: boolean
  /** Consecutive failures counted towards marking it down. */
  readonly consecutiveFailures: number
  /** Tags whose invalidation it missed, to be delivered when it is back. */
  readonly owedTags: number
  /** Whether it missed a flush (or more invalidations than are kept one by one) and will be flushed when back. */
  readonly owesFlush: boolean
  /** The last failure seen, if it has not succeeded since. */
  readonly lastError: TagcachedError | null
}

/** One server's counters, or why it gave none; see {@link Client.stats}. */
export type ServerStats =
  | { readonly server: string; readonly stats: Map<string, string>; readonly error: null }
  | { readonly server: string; readonly stats: null; readonly error: TagcachedError }

/** The lookup a client answers for a key whose server is marked down: a miss whose fence vouches for nothing. */
function unavailable(): Lookup {
  return { status: 'MISS', item: null, fence: UNAVAILABLE_FENCE, lease: null }
}


/**
 * A cache over one or several tagcached servers.
 *
 * ```js
 * import { Client } from 'tagcached'
 *
 * const cache = new Client({ servers: ['127.0.0.1:11311'] })
 * await cache.set('page:/posts/3', html, { tags: ['post:3', 'posts'], ttl: 3600 })
 * const hit = await cache.get('page:/posts/3') // null on a miss, else { value: Buffer, ... }
 * await cache.invalidateTags(['post:3']) // hard; { soft: true, expire: 3600 } for soft
 * await cache.close()
 * ```
 *
 * **Connections.** Each server has a small pool of connections, opened on
 * first use: with shard-aware routing (the default, where the server
 * offers it) `poolSize` per server thread, each keyed request going to the
 * connection of the thread that owns its key; otherwise `poolSize` per
 * server. Every connection pipelines: concurrent requests share it and
 * are matched to their responses by opaque. A connection that breaks is
 * replaced on next use; the requests in flight on it fail with a
 * {@link ConnectionError} naming the server, never hang, and never receive
 * another request's response.
 *
 * **Placement.** A key lives on one server, chosen by rendezvous hashing
 * of the key over the servers' names (protocol.md §10), exactly as the Rust
 * client chooses it: {@link serverFor} says which.
 *
 * **Failures.** A server is marked down after `failureThreshold`
 * consecutive failures (connection errors and timeouts; overlapping ones
 * count once) and probed after a backoff. While it is down its keys *miss*
 * on reads (`get` returns `null`) and *fail* on writes
 * ({@link ServerDownError}), without waiting; keys do not move to another
 * server.
 *
 * **Invalidation across servers.** {@link invalidateTags} and
 * {@link flushAll} go to every server at once, and succeed when every
 * server has acknowledged; then no server returns an entry carrying one of
 * the tags that was stored before. When some server does not acknowledge,
 * the call rejects with {@link UnacknowledgedError} naming them (the others
 * did apply it). A server whose invalidation failed because it was
 * unavailable is marked down at once, its reads miss, and the tags are
 * owed to it: the probe that brings it back delivers them (hard) before
 * anything else is sent there. So within this client a failed invalidation
 * never lets a stale entry be read; other processes are protected only if
 * they too invalidate through a client that can reach every server, so
 * retry or alert.
 */
export class Client {
  private readonly pools: ServerPool[]
  private readonly placement: Placement
  private closed = false

  /** A client of `options.servers`. Connects nothing until the first request. */
  constructor(options: ClientOptions) {
    const servers = options.servers
    if (!Array.isArray(servers) || servers.length === 0) {
      throw new InvalidArgumentError('a client needs at least one server')
    }
    const seen = new Set<string>()
    for (const server of servers) {
      if (typeof server !== 'string') {
        throw new InvalidArgumentError('each server must be a host:port string')
      }
      parseAddress(server)
      if (seen.has(server)) {
        throw new InvalidArgumentError(`server ${server} given twice`)
      }
      seen.add(server)
    }
    const backoffMin = checkMillis(options.backoffMin, 50, 'backoffMin')
    const settings = {
      connect: connectionSettings(options),
      poolSize: positiveInteger(options.poolSize, 1, 'poolSize'),
      shardAware: options.shardAware ?? true,
    }
    const policy = {
      failureThreshold: positiveInteger(options.failureThreshold, 3, 'failureThreshold'),
      backoffMin,
      backoffMax: Math.max(backoffMin, checkMillis(options.backoffMax, 5000, 'backoffMax')),
    }
    this.pools = servers.map((server) => new ServerPool(server, settings, policy))
    this.placement = new Placement(servers)
  }

  /** The servers, in the order given. */
  get servers(): string[] {
    return this.pools.map((pool) => pool.address)
  }

  /** The server that owns `key` by placement (protocol.md §10). */
  serverFor(key: Key): string {
    return this.poolFor(KeyHash.of(keyBytes(key))).address
  }

  /** Every server's health, in the order given. */
  serverStatus(): ServerStatus[] {
    return this.pools.map((pool) => {
      const snapshot = pool.health.snapshot()
      return {
        server: pool.address,
        down: snapshot.down,
        consecutiveFailures: snapshot.failures,
        owedTags: snapshot.owedTags,
        owesFlush: snapshot.owesFlush,
        lastError: snapshot.lastError,
      }
    })
  }

  /**
   * Marks `server` down now, as if it had failed: its reads miss, its
   * writes fail, and it is probed after the backoff. Returns `false` if no
   * server has that name.
   */
  markDown(server: string): boolean {
    const pool = this.pools.find((candidate) => candidate.address === server)
    pool?.markDown()
    return pool !== undefined
  }

  /**
   * The item under `key`, or `null` on a miss (also when its server is
   * marked down). With `allowStale`, a stale entry is returned too, with
   * `stale: true`; with `withTags`, the item's tags are filled in; with
   * `requestTags`, the entry is checked against those tags as if it
   * carried them. A miss's fence and the refresh lease are
   * {@link lookup}'s: `get` refuses the `lease` option, since the lease a
   * miss grants would be lost with it.
   */
  async get(key: Key, options: ReadOptions = {}): Promise<Item | null> {
    return this.missIfDown(this.onKey(key, (connection, bytes) => connection.get(bytes, options)), () => null)
  }

  /**
   * The full answer for `key` (see {@link Lookup}): `HIT`, `STALE` (with
   * `allowStale`), `MISS` with its fence and, with `lease`, the refresh
   * lease this reader is granted, or `HOT_MISS` (with `lease`) while
   * another reader holds it. A key whose server is marked down is a `MISS`
   * with {@link UNAVAILABLE_FENCE} and no lease.
   */
  async lookup(key: Key, options: LookupOptions = {}): Promise<Lookup> {
    return this.missIfDown(this.onKey(key, (connection, bytes) => connection.lookup(bytes, options)), unavailable)
  }

  /**
   * One item or `null` per key, in the order given: one GETM per server
   * lane (split at the server's `max_keys_per_getm`), all sent at once,
   * misses left off the wire. Keys of a server marked down are `null`.
   * Rejects if any server fails. Options as {@link get}'s.
   */
  async getMany(keys: readonly Key[], options: ReadOptions = {}): Promise<(Item | null)[]> {
    const found = await this.byLane(keys, (connection, groupKeys) => connection.getMany(groupKeys, options))
    return found.map((item) => item ?? null)
  }

  /**
   * One {@link Lookup} per key, in the order given, as {@link getMany}
   * reads them but with every miss's fence, and leases with `lease`. Keys
   * of a server marked down are misses with {@link UNAVAILABLE_FENCE}.
   */
  async lookupMany(keys: readonly Key[], options: LookupOptions = {}): Promise<Lookup[]> {
    const found = await this.byLane(keys, (connection, groupKeys) => connection.lookupMany(groupKeys, options))
    return found.map((lookup) => lookup ?? unavailable())
  }

  /**
   * Stores `value` under `key` as `options` say (see {@link SetOptions}):
   * TTL, tags, mode, CAS, fence, lease, stale window. Resolves with how it
   * ended: `STORED` (with the new CAS value) or, for conditional stores,
   * `NOT_STORED`, `EXISTS`, `NOT_FOUND`, `FENCED` or `LEASE_LOST`. Rejects
   * with {@link ServerDownError} if the key's server is marked down.
   */
  async set(key: Key, value: Value, options: SetOptions = {}): Promise<SetResult> {
    return this.onKey(key, (connection, bytes) => connection.set(bytes, value, options))
  }

  /** Removes `key`; whether a live entry was there. */
  async delete(key: Key): Promise<boolean> {
    return this.onKey(key, (connection, bytes) => connection.delete(bytes))
  }

  /** Resets the TTL of `key` to `ttl` seconds (rounded up; 0: never expire); whether a live entry was there. */
  async touch(key: Key, ttl: number): Promise<boolean> {
    return this.onKey(key, (connection, bytes) => connection.touch(bytes, ttl))
  }

  /**
   * Invalidates every entry carrying any of `tags`, on every server at
   * once. Hard by default: those entries are misses from now on. With
   * `{ soft: true, expire: N }` soft: stale for N seconds (served to reads
   * with `allowStale`), then misses; to other reads soft is hard at once.
   * Resolves with each server's invalidation sequence, in the order the
   * servers were given; rejects with {@link UnacknowledgedError} if some
   * server did not acknowledge (see the class's docs).
   */
  async invalidateTags(tags: readonly string[], options: InvalidateOptions = {}): Promise<bigint[]> {
    // Refuses bad arguments once, before any server is asked.
    commands.invalidateTags(tags, options)
    return this.fanOutInvalidation('INVALIDATE_TAGS', [...tags], options)
  }

  /**
   * Removes every entry on every server, or with `{ soft: true, expire: N }`
   * makes every entry stale for N seconds, then a miss. Resolves with each
   * server's sequence; rejects as {@link invalidateTags} does.
   */
  async flushAll(options: InvalidateOptions = {}): Promise<bigint[]> {
    commands.flushAll(options)
    return this.fanOutInvalidation('FLUSH_ALL', [], options)
  }

  /**
   * What every server knows of each of `tags` (protocol.md §6.11): one
   * {@link TagReport} per server, in the order given, since a tag's entries
   * may live on any of them. Rejects with {@link UnacknowledgedError} if a
   * server does not answer, so a partial answer is never taken for the
   * whole. The tags' last invalidation anywhere (Next.js's
   * `getExpiration`) is the latest of the reports' `lastInvalidated`.
   */
  async tagStatus(tags: readonly string[]): Promise<TagReport[]> {
    commands.tagStatus(tags)
    return this.fanOut('TAG_STATUS', this.pools, (pool) =>
      this.run(pool, pool.connection(null), (connection) => connection.tagStatus(tags)),
    )
  }

  /** Each server's counters (protocol.md §6.10), or the error it failed with, in the order given. */
  async stats(): Promise<ServerStats[]> {
    return Promise.all(
      this.pools.map(async (pool): Promise<ServerStats> => {
        try {
          const stats = await this.run(pool, pool.connection(null), (connection) => connection.stats())
          return { server: pool.address, stats, error: null }
        } catch (error) {
          if (error instanceof TagcachedError) {
            return { server: pool.address, stats: null, error }
          }
          throw error
        }
      }),
    )
  }

  /**
   * Checks every server answers, opening a connection to each if none is
   * open: a way to connect eagerly at start-up. Rejects with
   * {@link UnacknowledgedError} naming those that did not.
   */
  async ping(): Promise<void> {
    await this.fanOut('PING', this.pools, (pool) =>
      this.run(pool, pool.connection(null), (connection) => connection.ping()),
    )
  }

  /**
   * Closes every connection; requests still in flight reject with
   * {@link ClosedError}, and so does every later call.
   */
  async close(): Promise<void> {
    this.closed = true
    for (const pool of this.pools) {
      pool.close()
    }
  }

  private poolFor(hash: KeyHash): ServerPool {
    const pool = this.pools.length === 1 ? this.pools[0] : this.pools[this.placement.owner(hash)]
    if (pool === undefined) {
      throw new Error('placement chose no server')
    }
    return pool
  }

  /**
   * Runs `operation` on the pooled connection for `key`, given the key's
   * bytes (encoded once), and reports the outcome to its server's health.
   */
  private async onKey<T>(key: Key, operation: (connection: Connection, key: Buffer) => Promise<T>): Promise<T> {
    this.checkOpen()
    const bytes = keyBytes(key)
    const hash = KeyHash.of(bytes)
    const pool = this.poolFor(hash)
    return this.run(pool, pool.connection(hash), (connection) => operation(connection, bytes))
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new ClosedError()
    }
  }

  /** Runs `operation` once `connection` is had, and reports how it ended to `pool`'s health. */
  private async run<T>(
    pool: ServerPool,
    connection: Promise<Connection>,
    operation: (connection: Connection) => Promise<T>,
  ): Promise<T> {
    const opened = await connection
    const started = now()
    try {
      const result = await operation(opened)
      pool.record(started, null)
      return result
    } catch (error) {
      pool.record(started, error)
      throw error
    }
  }

  /** A read of a key whose server is marked down is a miss. */
  private async missIfDown<T>(read: Promise<T>, miss: () => T): Promise<T> {
    try {
      return await read
    } catch (error) {
      if (error instanceof ServerDownError) {
        return miss()
      }
      throw error
    }
  }

  /**
   * Groups `keys` by server and lane, runs `operation` on each group (split
   * at the server's `max_keys_per_getm`), all at once, and returns the
   * answers in the keys' order; a group whose server is marked down leaves
   * `undefined` in its places.
   */
  private async byLane<T>(
    keys: readonly Key[],
    operation: (connection: Connection, keys: Key[]) => Promise<readonly T[]>,
  ): Promise<(T | undefined)[]> {
    this.checkOpen()
    const answers = new Array<T | undefined>(keys.length).fill(undefined)
    const byPool = new Map<ServerPool, { positions: number[]; hashes: KeyHash[] }>()
    keys.forEach((key, position) => {
      const hash = KeyHash.of(keyBytes(key))
      const pool = this.poolFor(hash)
      let group = byPool.get(pool)
      if (group === undefined) {
        group = { positions: [], hashes: [] }
        byPool.set(pool, group)
      }
      group.positions.push(position)
      group.hashes.push(hash)
    })
    const work: Promise<void>[] = []
    for (const [pool, group] of byPool) {
      work.push(
        (async () => {
          let lanes: Lanes
          try {
            lanes = await pool.currentLanes()
          } catch (error) {
            if (error instanceof ServerDownError) return
            throw error
          }
          const byLane = new Map<number, number[]>()
          group.positions.forEach((position, n) => {
            const lane = lanes.laneFor(group.hashes[n] as KeyHash)
            const positions = byLane.get(lane) ?? []
            positions.push(position)
            byLane.set(lane, positions)
          })
          const sends: Promise<void>[] = []
          for (const [lane, positions] of byLane) {
            const connection = pool.laneConnection(lanes, lane)
            sends.push(
              (async () => {
                let maxKeys = 1024
                try {
                  maxKeys = Math.max(1, (await connection).hello.maxKeysPerGetm)
                } catch {
                  // `run` reports the failure below.
                }
                const chunks: Promise<void>[] = []
                for (let at = 0; at < positions.length; at += maxKeys) {
                  const chunk = positions.slice(at, at + maxKeys)
                  chunks.push(
                    this.run(pool, connection, (opened) =>
                      operation(
                        opened,
                        chunk.map((position) => keys[position] as Key),
                      ),
                    ).then((found) => {
                      chunk.forEach((position, n) => {
                        answers[position] = found[n]
                      })
                    }),
                  )
                }
                await Promise.all(chunks)
              })(),
            )
          }
          try {
            await Promise.all(sends)
          } catch (error) {
            if (error instanceof ServerDownError) return
            throw error
          }
        })(),
      )
    }
    await Promise.all(work)
    return answers
  }

  /**
   * INVALIDATE_TAGS of `tags` (FLUSH_ALL if `tags` is empty) on every
   * server; a server that may have missed it owes it.
   */
  private async fanOutInvalidation(
    what: string,
    tags: string[],
    options: InvalidateOptions,
  ): Promise<bigint[]> {
    this.checkOpen()
    return this.fanOut(what, this.pools, async (pool) => {
      if (pool.health.oweIfDown(tags)) {
        pool.poke()
        throw pool.downError()
      }
      try {
        return await this.run(pool, pool.connection(null), (connection) =>
          tags.length === 0 ? connection.flushAll(options) : connection.invalidateTags(tags, options),
        )
      } catch (error) {
        if (error instanceof TagcachedError && error.unavailable) {
          pool.owe(tags, error)
        }
        throw error
      }
    })
  }

  /** Runs `operation` on every pool at once: the results in order if all succeeded, else {@link UnacknowledgedError}. */
  private async fanOut<T>(
    what: string,
    pools: readonly ServerPool[],
    operation: (pool: ServerPool) => Promise<T>,
  ): Promise<T[]> {
    this.checkOpen()
    const settled = await Promise.allSettled(pools.map((pool) => operation(pool)))
    const results: T[] = []
    const failures: ServerFailure[] = []
    settled.forEach((outcome, index) => {
      const server = pools[index]?.address ?? ''
      if (outcome.status === 'fulfilled') {
        results.push(outcome.value)
      } else if (outcome.reason instanceof TagcachedError) {
        failures.push({ server, error: outcome.reason })
      } else {
        throw outcome.reason
      }
    })
    if (failures.length > 0) {
      throw new UnacknowledgedError(what, pools.length, failures)
    }
    return results
  }
}
