/**
 * One server's connections, opened lazily and shared by every request.
 *
 * A {@link ServerPool} is one server of a {@link Client}. Its connections
 * are arranged in *lanes*: on a server that offers shard-aware connections
 * (protocol.md §9) one lane per shard, each connection of a lane asking
 * HELLO for that shard, so a keyed request goes to the thread that owns its
 * key and costs the server no hop between its threads; otherwise a single
 * lane. Each lane holds `poolSize` {@link Connection}s, used in turn; each
 * connection pipelines any number of requests, so the pool bounds sockets,
 * not concurrency.
 *
 * The lanes are unknown until the first connection's HELLO says how many
 * shards the server has; that connection (*discovery*) asks for any shard
 * and is kept in the lane of the shard it got. A slot is filled on first
 * use and refilled when its connection is found closed; one caller
 * connects per slot while the others wait for it, so a burst of requests
 * opens one connection, not hundreds.
 *
 * Failures are reported to the server's {@link Health}. When it marks the
 * server down, the lanes are dropped (rediscovered on recovery, in case the
 * server came back with another shard count) and their connections retired;
 * requests fail at once until a probe, started by the first request after
 * the backoff, reconnects, delivers any owed invalidations and marks it up.
 *
 * @module
 */

import { Connection, type ConnectionSettings } from './connection.js'
import {
  ClosedError,
  ServerDownError,
  ServerError,
  TagcachedError,
} from './errors.js'
import { Health, type HealthPolicy, type Owed } from './health.js'
import { Status } from './protocol.js'
import type { KeyHash } from './placement.js'

/** How a server's connections are opened and arranged. */
export interface PoolSettings {
  /** Name, timeouts and queue depth for every connection; no shard. */
  readonly connect: ConnectionSettings
  /** Connections per lane; at least 1. */
  readonly poolSize: number
  /** Whether to open one lane per shard where the server allows it. */
  readonly shardAware: boolean
}

/** A monotonic clock in milliseconds. */
export function now(): number {
  return performance.now()
}

interface Slot {
  /** The shard its connection asks for, if shard-aware. */
  readonly shard: number | null
  connection: Connection | null
  /** Set while connecting, so one caller connects per slot. */
  connecting: Promise<Connection> | null
}

/** The connection slots of one server, `perLane` per lane. */
export class Lanes {
  readonly slots: Slot[]

  constructor(
    readonly shardAware: boolean,
    readonly shardCount: number,
    readonly perLane: number,
  ) {
    const lanes = shardAware ? Math.max(1, shardCount) : 1
    this.slots = []
    for (let lane = 0; lane < lanes; lane++) {
      for (let n = 0; n < perLane; n++) {
        this.slots.push({ shard: shardAware ? lane : null, connection: null, connecting: null })
      }
    }
  }

  /** How many lanes there are. */
  get count(): number {
    return this.slots.length / this.perLane
  }

  /** The lane of a key: its shard's, if shard-aware (protocol.md §9). */
  laneFor(hash: KeyHash): number {
    return this.shardAware ? hash.shard(Math.max(1, this.shardCount)) : 0
  }

  slot(lane: number, turn: number): Slot {
    const slot = this.slots[lane * this.perLane + (turn % this.perLane)]
    if (slot === undefined) {
      throw new Error(`no slot ${turn} in lane ${lane}`)
    }
    return slot
  }

  suits(shardAware: boolean, shardCount: number): boolean {
    return this.shardAware === shardAware && (!shardAware || this.shardCount === shardCount)
  }
}

/** One server: its address, health and connections. */
export class ServerPool {
  readonly health: Health
  private lanes: Lanes | null = null
  private discovering: Promise<Lanes> | null = null
  private turn = 0
  private closed = false
  /** Connections retired or not yet filed, to close with the pool. */
  private readonly loose = new Set<Connection>()

  constructor(
    readonly address: string,
    private readonly settings: PoolSettings,
    policy: HealthPolicy,
  ) {
    this.health = new Health(policy)
  }

  /** The error for a request to this server while it is marked down. */
  downError(): ServerDownError {
    return new ServerDownError(this.address, { cause: this.health.snapshot().lastError ?? undefined })
  }

  /** The server's lanes, discovering them with a first connection if need be. */
  async currentLanes(): Promise<Lanes> {
    this.checkUsable()
    if (this.lanes !== null) {
      return this.lanes
    }
    this.discovering ??= this.discover().finally(() => {
      this.discovering = null
    })
    return this.discovering
  }

  /** A connection for a key with hash `hash`, or for a keyless request (`null`). */
  async connection(hash: KeyHash | null): Promise<Connection> {
    const lanes = await this.currentLanes()
    const lane = hash === null ? this.turn++ % lanes.count : lanes.laneFor(hash)
    return this.laneConnection(lanes, lane)
  }

  /** A connection of `lane`, opening one if its slot is empty or closed. */
  async laneConnection(lanes: Lanes, lane: number): Promise<Connection> {
    const slot = lanes.slot(lane, this.turn++)
    if (slot.connection !== null && !slot.connection.isClosed) {
      return slot.connection
    }
    slot.connecting ??= this.fill(lanes, slot).finally(() => {
      slot.connecting = null
    })
    return slot.connecting
  }

  private checkUsable(): void {
    if (this.closed) {
      throw new ClosedError(this.address)
    }
    if (this.health.down) {
      this.poke()
      throw this.downError()
    }
  }

  /** Fails unless a connection may be opened now. */
  private checkPermit(): void {
    const permit = this.health.permit(now())
    if (permit.kind === 'wait') {
      throw permit.error
    }
    if (permit.kind === 'down') {
      throw this.downError()
    }
  }

  /** Opens a connection asking for `shard` (`null`: any), and reports how it went to the health. */
  private async open(shard: number | null): Promise<Connection> {
    this.checkPermit()
    const started = now()
    let connection: Connection
    try {
      connection = await Connection.connect(this.address, { ...this.settings.connect, shard })
    } catch (error) {
      this.connectFailed(started, error)
      throw error
    }
    if (this.closed) {
      connection.close()
      throw new ClosedError(this.address)
    }
    this.health.connected()
    return connection
  }

  private async fill(lanes: Lanes, slot: Slot): Promise<Connection> {
    this.checkUsable()
    let connection: Connection
    try {
      connection = await this.open(slot.shard)
    } catch (error) {
      if (slot.shard !== null && error instanceof ServerError && error.status === Status.MALFORMED) {
        // want_shard beyond the server's shards: it has fewer now.
        this.forgetLanes(lanes)
      }
      throw error
    }
    if (lanes.shardAware && connection.hello.shardCount !== lanes.shardCount) {
      // The server restarted with another thread count: this connection
      // serves this request, the lanes are rebuilt next time.
      this.forgetLanes(lanes)
      this.loose.add(connection)
      connection.retire()
    } else {
      slot.connection?.retire()
      slot.connection = connection
    }
    return connection
  }

  private async discover(): Promise<Lanes> {
    return this.adopt(await this.open(null))
  }

  /**
   * Files a connection opened for any shard under the lane of the shard it
   * got, (re)building the lanes if they are unknown or no longer fit.
   */
  private adopt(connection: Connection): Lanes {
    const info = connection.hello
    const shardAware = this.settings.shardAware && info.features.shardAware && info.shardCount > 0
    let lanes = this.lanes
    if (lanes === null || !lanes.suits(shardAware, info.shardCount)) {
      this.dropConnections()
      lanes = new Lanes(shardAware, info.shardCount, Math.max(1, this.settings.poolSize))
      this.lanes = lanes
    }
    const lane = shardAware ? info.shard : 0
    for (let turn = 0; turn < lanes.perLane; turn++) {
      const slot = lanes.slot(lane, turn)
      if (slot.connection === null || slot.connection.isClosed) {
        slot.connection = connection
        return lanes
      }
    }
    connection.close()
    return lanes
  }

  /** Drops `stale` if it is still the server's lanes. */
  private forgetLanes(stale: Lanes): void {
    if (this.lanes === stale) {
      this.dropConnections()
    }
  }

  /** Drops the lanes; their connections close once their requests are answered. */
  private dropConnections(): void {
    const lanes = this.lanes
    this.lanes = null
    if (lanes === null) {
      return
    }
    for (const slot of lanes.slots) {
      if (slot.connection !== null) {
        this.loose.add(slot.connection)
        slot.connection.retire()
        slot.connection = null
      }
    }
    for (const connection of this.loose) {
      if (connection.isClosed) {
        this.loose.delete(connection)
      }
    }
  }

  private connectFailed(started: number, error: unknown): void {
    if (error instanceof TagcachedError && error.unavailable) {
      if (this.health.connectFailed(started, now(), error)) {
        this.dropConnections()
      }
    }
  }

  /** Reports how a request that started at `started` ended: `error` `null` for success. */
  record(started: number, error: unknown): void {
    if (error === null) {
      this.health.recordSuccess()
      return
    }
    if (error instanceof TagcachedError && error.unavailable && !(error instanceof ServerDownError)) {
      if (this.health.recordFailure(started, now(), error)) {
        this.dropConnections()
      }
    }
  }

  /** An invalidation of `tags` (empty: a FLUSH_ALL) may have missed the server: owe it, and keep it down until delivered. */
  owe(tags: readonly string[], error: TagcachedError): void {
    if (this.health.owe(tags, now(), error)) {
      this.dropConnections()
    }
  }

  /** Marks the server down now; it is probed after the backoff. */
  markDown(): void {
    if (this.health.forceDown(now())) {
      this.dropConnections()
    }
  }

  /** If the server is down and due for a retry, starts the probe that brings it back. */
  poke(): void {
    if (!this.closed && this.health.claimProbe(now())) {
      void this.probe()
    }
  }

  /** Reconnects, delivers what the server is owed, and marks it up; or reports the failure. */
  private async probe(): Promise<void> {
    let connection: Connection | null = null
    try {
      connection = await Connection.connect(this.address, this.settings.connect)
      this.loose.add(connection)
      if (this.closed) {
        throw new ClosedError(this.address)
      }
      for (let owed = this.health.recoverOrTakeOwed(); owed !== null; owed = this.health.recoverOrTakeOwed()) {
        try {
          await deliver(connection, owed)
        } catch (error) {
          this.health.restoreOwed(owed)
          throw error
        }
      }
      this.loose.delete(connection)
      this.adopt(connection)
    } catch (error) {
      connection?.close()
      if (error instanceof TagcachedError) {
        this.health.probeFailed(now(), error)
      } else {
        throw error
      }
    }
  }

  /** Closes every connection; requests on them reject with {@link ClosedError}. */
  close(): void {
    this.closed = true
    const lanes = this.lanes
    this.lanes = null
    for (const slot of lanes?.slots ?? []) {
      slot.connection?.close()
      slot.connection = null
    }
    for (const connection of this.loose) {
      connection.close()
    }
    this.loose.clear()
  }
}

/** Sends a recovering server what it is owed. */
async function deliver(connection: Connection, owed: Owed): Promise<void> {
  if (owed.flush) {
    await connection.flushAll()
    return
  }
  const perRequest = Math.max(1, Math.min(connection.hello.maxTags, 0xffff))
  for (let at = 0; at < owed.tags.length; at += perRequest) {
    const chunk = owed.tags.slice(at, at + perRequest)
    try {
      await connection.invalidateTags(chunk)
    } catch (error) {
      if (!(error instanceof TagcachedError) || error.unavailable) {
        throw error
      }
      // The server refuses some tag of the chunk (TAG_INVALID, say): it can
      // hold no entry under a tag it refuses, so that tag needs nothing; the
      // others still do.
      for (const tag of chunk) {
        try {
          await connection.invalidateTags([tag])
        } catch (single) {
          if (!(single instanceof TagcachedError) || single.unavailable) {
            throw single
          }
        }
      }
    }
  }
}
