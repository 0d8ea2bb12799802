/**
 * One TCP connection to one server, shared by any number of concurrent
 * callers: their requests are pipelined and each response is matched to
 * its request.
 *
 * **Matching.** The server answers a connection's requests in the order
 * sent, each response echoing its request's opaque (protocol.md §5). So the
 * requests in flight form a queue, and every frame belongs to the request
 * at its front, with two exceptions the protocol allows: a QUIET request
 * that succeeded sends nothing, so a frame for a later opaque completes
 * every quiet request ahead of it, silently; and GETM sends one frame per
 * key (fewer when QUIET leaves misses out), so it stays at the front until
 * it has them all. Anything else (a frame for a request not at the front,
 * an opcode that is not its request's, an undecodable frame) means the
 * stream can no longer be trusted: the connection is closed and every
 * request on it fails, rather than risk handing a caller another request's
 * response.
 *
 * **Writing.** Requests made in the same tick go out in one write (the
 * socket is corked until the next tick), so concurrent callers share
 * system calls as ioredis's auto-pipelining does.
 *
 * **The queue and its bound.** At most `queueDepth` requests are in flight
 * (written, not yet answered); more wait, in order, until answers make
 * room. So what a connection holds in written but unanswered requests is
 * bounded, and a server that stops reading (protocol.md §5, flow control)
 * slows its callers instead of filling memory.
 *
 * **Timeouts.** A request not answered within `requestTimeout` of being
 * made (waiting included) fails with {@link TimeoutError}; if it was
 * written, its entry stays in the queue so that its late response is read
 * and dropped, and the requests behind it still meet their own.
 *
 * @module
 */

import net from 'node:net'
import tls from 'node:tls'

import * as commands from './commands.js'
import type {
  Command,
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
import {
  AuthenticationError,
  ClosedError,
  ConnectionError,
  InvalidArgumentError,
  ProtocolError,
  ServerError,
  TagcachedError,
  TimeoutError,
  UnsupportedError,
} from './errors.js'
import {
  DEFAULT_MAX_FRAME,
  FrameDecoder,
  HEADER_LENGTH,
  MalformedFrame,
  Opcode,
  PROTOCOL_VERSION,
  Status,
  isErrorStatus,
  peekKeyIndex,
  statusName,
  Flag,
  type HelloInfo,
  type ResponseFrame,
} from './protocol.js'

/** The name sent in HELLO by default, for the server's logs. */
export const DEFAULT_CLIENT_NAME = 'tagcached-node/0.1.0'
/** Default bound on requests in flight on one connection. */
export const DEFAULT_QUEUE_DEPTH = 1024
/** Default bound on TCP connect plus HELLO, milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT = 2000
/** Default bound on each request, milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT = 1000

/** Settings for one connection. Times are milliseconds; 0 means no bound. */
export interface ConnectionOptions {
  /** The name sent in HELLO, for the server's logs. */
  readonly clientName?: string
  /** The shard this connection should be served by (protocol.md §9); absent or `null`: any. */
  readonly shard?: number | null
  /** Bound on TCP connect and HELLO together; default 2000. */
  readonly connectTimeout?: number
  /** Bound on each request, from the call until its answer; default 1000. */
  readonly requestTimeout?: number
  /** Requests in flight before more wait for room; default 1024. */
  readonly queueDepth?: number
  /**
   * The token sent with AUTH right after HELLO when the server requires
   * authentication (HELLO's feature bit 5, protocol.md §6.12); a server
   * that does not is sent nothing. Read it from a file or the environment.
   */
  readonly authToken?: string | Buffer | undefined
  /**
   * Connect with TLS (protocol.md §1): `true` verifies the server against
   * Node's CA certificates, an object says how. Absent or `false`: plain TCP.
   */
  readonly tls?: boolean | TlsOptions
}

/**
 * How to connect to a server that serves TLS, passed to Node's
 * `tls.connect`. Every field is optional.
 */
export interface TlsOptions {
  /** CA certificates (PEM) the server's must chain to; default: Node's bundled CAs. */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>
  /** The client certificate chain (PEM), for a server that requires one (`--tls-client-ca`). */
  readonly cert?: string | Buffer
  /** The private key (PEM) of `cert`. */
  readonly key?: string | Buffer
  /** The name the server's certificate must carry; default: the host of the address. */
  readonly servername?: string
  /** Whether to refuse a server whose certificate does not verify; default true. Turn off only to test. */
  readonly rejectUnauthorized?: boolean
}

/** A TCP or TLS socket to `host:port`, connecting. */
function openSocket(host: string, port: number, options: boolean | TlsOptions | undefined): net.Socket {
  if (options === undefined || options === false) {
    return net.connect({ host, port, noDelay: true, keepAlive: true })
  }
  const settings: TlsOptions = options === true ? {} : options
  const socket = tls.connect({
    host,
    port,
    ...(settings.ca !== undefined ? { ca: settings.ca as string | Buffer | Array<string | Buffer> } : {}),
    ...(settings.cert !== undefined ? { cert: settings.cert } : {}),
    ...(settings.key !== undefined ? { key: settings.key } : {}),
    // Node sends no SNI for an IP address, and checks it against the
    // certificate's IP addresses.
    ...(settings.servername !== undefined ? { servername: settings.servername } : {}),
    rejectUnauthorized: settings.rejectUnauthorized ?? true,
  })
  socket.setNoDelay(true)
  socket.setKeepAlive(true)
  return socket
}

/** A host and port, from a `host:port` address. */
export interface HostPort {
  readonly host: string
  readonly port: number
}

/**
 * Splits `host:port` (`[v6]:port` for an IPv6 address). Throws
 * {@link InvalidArgumentError} for anything else.
 */
export function parseAddress(address: string): HostPort {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:[\]\s]+):(\d+)$/.exec(address)
  const port = Number(match?.[2])
  if (match === null || match[1] === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`server address ${JSON.stringify(address)} is not host:port (or [v6]:port)`)
  }
  return { host: match[1], port }
}

/** A time option in milliseconds (`fallback` if absent); refuses a negative or non-finite one. */
export function checkMillis(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) {
    return fallback
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${what} must be a number of milliseconds, at least 0`)
  }
  return value
}

/** A count option (`fallback` if absent); refuses anything but an integer of at least 1. */
export function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) {
    return fallback
  }
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${what} must be an integer, at least 1`)
  }
  return value
}

/** {@link ConnectionOptions} with every default filled in and every bound checked. */
export interface ConnectionSettings {
  readonly clientName: string
  readonly shard: number | null
  readonly connectTimeout: number
  readonly requestTimeout: number
  readonly queueDepth: number
  readonly authToken: string | Buffer | undefined
  readonly tls: boolean | TlsOptions
}

/**
 * The settings `options` ask for, defaults filled in; throws
 * {@link InvalidArgumentError} for a bound out of range. The one place a
 * connection option gets its default: a {@link Client} checks its options
 * with it when made, a {@link Connection} when it connects.
 */
export function connectionSettings(options: ConnectionOptions): ConnectionSettings {
  return {
    clientName: options.clientName ?? DEFAULT_CLIENT_NAME,
    shard: options.shard ?? null,
    connectTimeout: checkMillis(options.connectTimeout, DEFAULT_CONNECT_TIMEOUT, 'connectTimeout'),
    requestTimeout: checkMillis(options.requestTimeout, DEFAULT_REQUEST_TIMEOUT, 'requestTimeout'),
    queueDepth: positiveInteger(options.queueDepth, DEFAULT_QUEUE_DEPTH, 'queueDepth'),
    authToken: options.authToken,
    tls: options.tls ?? false,
  }
}

/** One request made and not yet answered. */
interface Entry {
  readonly command: Command<unknown>
  readonly opcode: number
  readonly quiet: boolean
  readonly resolve: (value: unknown) => void
  readonly reject: (error: unknown) => void
  opaque: number
  frames: ResponseFrame[]
  timer: NodeJS.Timeout | null
  /** The caller has its answer or error (a timeout); frames still to come are dropped. */
  settled: boolean
}

/** A FIFO with O(1) shift. */
class Queue<T> {
  private items: (T | undefined)[] = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  peek(): T | undefined {
    return this.items[this.head]
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) {
      return undefined
    }
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head += 1
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  drain(): T[] {
    const items = this.items.slice(this.head) as T[]
    this.items = []
    this.head = 0
    return items
  }
}

/**
 * One TCP connection to one server, after HELLO. Open one with
 * {@link Connection.connect}; a {@link Client} holds a pool of them.
 *
 * Every method may be called concurrently; requests are pipelined. A
 * connection that fails stays failed: its requests in flight and every
 * later one reject with the reason ({@link isClosed} is then true).
 */
export class Connection {
  /** The server's address, as given. */
  readonly address: string
  private readonly socket: net.Socket
  private readonly decoder = new FrameDecoder(DEFAULT_MAX_FRAME)
  private readonly requestTimeout: number
  private readonly queueDepth: number
  private readonly inFlight = new Queue<Entry>()
  private readonly waiting = new Queue<Entry>()
  private nextOpaque = 1
  private corked = false
  private closeReason: TagcachedError | null = null
  private retiring = false
  private info: HelloInfo | null = null

  private constructor(address: string, socket: net.Socket, settings: ConnectionSettings) {
    this.address = address
    this.socket = socket
    this.requestTimeout = settings.requestTimeout
    this.queueDepth = settings.queueDepth
    socket.on('data', (chunk: Buffer) => this.received(chunk))
    socket.on('error', (error: Error) => {
      this.fail(new ConnectionError(address, `connection failed: ${error.message}`, { cause: error }))
    })
    socket.on('close', () => {
      this.fail(new ConnectionError(address, 'connection closed by the server'))
    })
  }

  /**
   * Opens a connection to `address` (`host:port`) and exchanges HELLO,
   * asking for `options.shard` if given, then AUTH with `options.authToken`
   * if the server requires authentication. Rejects with
   * {@link ConnectionError}, {@link TimeoutError}, {@link ServerError}
   * (BUSY at the server's connection limit; MALFORMED for a shard the
   * server does not have), or {@link AuthenticationError} (a token refused,
   * or none given to a server that requires one).
   */
  static async connect(address: string, options: ConnectionOptions = {}): Promise<Connection> {
    const { host, port } = parseAddress(address)
    const settings = connectionSettings(options)
    const { connectTimeout } = settings
    const secure = settings.tls !== false
    const socket = openSocket(host, port, settings.tls)
    const connection = new Connection(address, socket, settings)
    let timer: NodeJS.Timeout | null = null
    const handshake = connection.handshake(
      secure ? 'secureConnect' : 'connect',
      settings.shard,
      settings.clientName,
      settings.authToken,
    )
    try {
      if (connectTimeout === 0) {
        return await handshake
      }
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(address, 'connect', connectTimeout)), connectTimeout)
      })
      return await Promise.race([handshake, timeout])
    } catch (error) {
      connection.close(error instanceof TagcachedError ? error : undefined)
      throw error
    } finally {
      if (timer !== null) clearTimeout(timer)
      handshake.catch(() => {})
    }
  }

  /** Waits for `connected` (TCP's `connect`, or TLS's `secureConnect` once the handshake is done), then HELLO, then AUTH if asked. */
  private async handshake(
    connected: 'connect' | 'secureConnect',
    shard: number | null,
    clientName: string,
    authToken: string | Buffer | undefined,
  ): Promise<Connection> {
    await new Promise<void>((resolve, reject) => {
      const failed = (error: Error): void => {
        reject(new ConnectionError(this.address, `connect failed: ${error.message}`, { cause: error }))
      }
      this.socket.once(connected, () => {
        this.socket.off('error', failed)
        resolve()
      })
      this.socket.once('error', failed)
    })
    // HELLO is the one request sent before the server's limits are known;
    // its answer is small, so the default bound serves.
    const info = await this.send(commands.hello(shard, clientName), 0)
    if (info.version !== PROTOCOL_VERSION) {
      throw new ProtocolError(this.address, `server chose protocol version ${info.version}; this client speaks 1`)
    }
    if (shard !== null && info.shard !== shard) {
      throw new ProtocolError(this.address, `asked for shard ${shard}, served by shard ${info.shard}`)
    }
    if (info.features.authentication) {
      await this.authenticate(authToken)
    }
    this.info = info
    // Every answer the server's limits allow fits in its max_frame.
    this.decoder.setMaxBody(Math.max(info.maxFrame, DEFAULT_MAX_FRAME))
    return this
  }

  /** AUTH with `token`, to a server whose HELLO said it requires it. */
  private async authenticate(token: string | Buffer | undefined): Promise<void> {
    if (token === undefined) {
      throw new AuthenticationError(this.address, 'the server requires authentication and no authToken was given')
    }
    const bytes = typeof token === 'string' ? Buffer.from(token, 'utf8') : token
    try {
      await this.send(commands.auth(bytes), 0)
    } catch (error) {
      if (error instanceof ServerError && error.status === Status.AUTH_FAILED) {
        throw new AuthenticationError(this.address, `authentication failed (${error.message})`, { cause: error })
      }
      throw error
    }
  }

  /** The server's answer to HELLO: its limits, features and shards. */
  get hello(): HelloInfo {
    if (this.info === null) {
      throw new Error('Connection.hello read before the handshake finished')
    }
    return this.info
  }

  /** Whether the connection has failed or been closed; it then serves no request. */
  get isClosed(): boolean {
    return this.closeReason !== null
  }

  /** Requests made and not yet answered (in flight or waiting for room). */
  get pending(): number {
    return this.inFlight.length + this.waiting.length
  }

  /**
   * Sends `command` and resolves with its answer: the call under every
   * method. `timeout` (milliseconds, 0 for none) overrides the
   * connection's request timeout.
   */
  private send<T>(command: Command<T>, timeout: number = this.requestTimeout): Promise<T> {
    if (this.closeReason !== null) {
      return Promise.reject(this.closeReason)
    }
    if (this.info !== null) {
      const missing = commands.missingFeature(command.needs, this.info)
      if (missing !== null) {
        return Promise.reject(new UnsupportedError(this.address, missing))
      }
      const body = command.frame.bytes.length - HEADER_LENGTH
      if (body > this.info.maxFrame) {
        return Promise.reject(
          new InvalidArgumentError(
            `${opcodeName(command.frame.opcode)} of ${body} bytes exceeds the server's max_frame of ${this.info.maxFrame}`,
            this.address,
          ),
        )
      }
    }
    return new Promise<T>((resolve, reject) => {
      const entry: Entry = {
        command,
        opcode: command.frame.opcode,
        quiet: (command.frame.flags & Flag.QUIET) !== 0,
        resolve: resolve as (value: unknown) => void,
        reject,
        opaque: 0,
        frames: [],
        timer: null,
        settled: false,
      }
      if (timeout > 0) {
        entry.timer = setTimeout(() => this.timedOut(entry, timeout), timeout)
      }
      if (this.inFlight.length < this.queueDepth) {
        this.write(entry)
      } else {
        this.waiting.push(entry)
      }
    })
  }

  private write(entry: Entry): void {
    entry.opaque = this.nextOpaque
    // Opaque 0 is the server speaking about the connection itself.
    this.nextOpaque = this.nextOpaque === 0xffff_ffff ? 1 : this.nextOpaque + 1
    entry.command.frame.bytes.writeUInt32BE(entry.opaque, 8)
    this.inFlight.push(entry)
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(() => {
        this.corked = false
        this.socket.uncork()
      })
    }
    this.socket.write(entry.command.frame.bytes)
  }

  private timedOut(entry: Entry, timeout: number): void {
    entry.timer = null
    if (entry.settled) {
      return
    }
    entry.settled = true
    entry.reject(new TimeoutError(this.address, opcodeName(entry.opcode), timeout))
  }

  private received(chunk: Buffer): void {
    if (this.closeReason !== null) {
      return
    }
    let frames: ResponseFrame[]
    try {
      frames = this.decoder.push(chunk)
    } catch (error) {
      this.fail(this.violation(error))
      return
    }
    for (const frame of frames) {
      if (!this.deliver(frame)) {
        return
      }
    }
    this.admitWaiting()
  }

  private violation(error: unknown): TagcachedError {
    if (error instanceof TagcachedError) {
      return error
    }
    return new ProtocolError(this.address, error instanceof Error ? error.message : String(error))
  }

  /** Routes one frame to its request; `false` if the connection failed. */
  private deliver(frame: ResponseFrame): boolean {
    if (frame.opaque === 0) {
      // The server speaking about the connection itself (BUSY, BAD_MAGIC).
      this.fail(
        isErrorStatus(frame.status)
          ? new ServerError(this.address, frame.status, statusName(frame.status), frame.body.toString('utf8'))
          : new ProtocolError(this.address, `${statusName(frame.status)} response with opaque 0`),
      )
      return false
    }
    let front = this.inFlight.peek()
    while (front !== undefined && front.opaque !== frame.opaque && front.quiet) {
      // A quiet request ahead of this frame's succeeded silently.
      this.inFlight.shift()
      this.complete(front)
      front = this.inFlight.peek()
    }
    if (front === undefined || front.opaque !== frame.opaque) {
      this.fail(
        new ProtocolError(
          this.address,
          `response with opaque ${frame.opaque} (${opcodeName(frame.opcode)}) to no request at the front of the queue`,
        ),
      )
      return false
    }
    if (front.opcode !== frame.opcode) {
      this.fail(
        new ProtocolError(
          this.address,
          `response to request ${frame.opaque} has opcode ${opcodeName(frame.opcode)}, the request ${opcodeName(front.opcode)}`,
        ),
      )
      return false
    }
    front.frames.push(frame)
    if (isComplete(front)) {
      this.inFlight.shift()
      return this.complete(front)
    }
    return true
  }

  /** Hands a finished request its answer; `false` if its frames broke the connection. */
  private complete(entry: Entry): boolean {
    if (entry.timer !== null) {
      clearTimeout(entry.timer)
      entry.timer = null
    }
    if (entry.settled) {
      return true
    }
    entry.settled = true
    let answer: unknown
    try {
      answer = entry.command.read(entry.frames, this.address)
    } catch (error) {
      if (error instanceof MalformedFrame) {
        const failure = new ProtocolError(this.address, error.message)
        entry.reject(failure)
        this.fail(failure)
        return false
      }
      entry.reject(error)
      return true
    }
    entry.resolve(answer)
    return true
  }

  private admitWaiting(): void {
    while (this.inFlight.length < this.queueDepth && this.closeReason === null) {
      const entry = this.waiting.shift()
      if (entry === undefined) {
        break
      }
      if (!entry.settled) {
        this.write(entry)
      }
    }
    if (this.retiring && this.pending === 0) {
      this.close()
    }
  }

  /** Fails the connection: every request on it rejects with `reason`, and so does every later one. */
  private fail(reason: TagcachedError): void {
    if (this.closeReason !== null) {
      return
    }
    this.closeReason = reason
    this.socket.destroy()
    for (const entry of [...this.inFlight.drain(), ...this.waiting.drain()]) {
      if (entry.timer !== null) {
        clearTimeout(entry.timer)
        entry.timer = null
      }
      if (!entry.settled) {
        entry.settled = true
        entry.reject(reason)
      }
    }
  }

  /**
   * Closes the connection now: requests in flight reject with `reason`
   * (by default a {@link ClosedError}).
   */
  close(reason?: TagcachedError): void {
    this.fail(reason ?? new ClosedError(this.address))
  }

  /** Closes the connection once every request made on it is answered. */
  retire(): void {
    this.retiring = true
    if (this.pending === 0) {
      this.close()
    }
  }

  /** The item under `key`, fresh or (with `allowStale`) stale, or `null`. See {@link Client.get}. */
  get(key: Key, options?: ReadOptions): Promise<Item | null> {
    return this.call(() => commands.get(key, options))
  }

  /** The full answer for `key`: fence, lease, hot miss. See {@link Client.lookup}. */
  lookup(key: Key, options?: LookupOptions): Promise<Lookup> {
    return this.call(() => commands.lookup(key, options))
  }

  /**
   * One item or `null` per key, in order, from one GETM sent QUIET and
   * ended by a NOOP, so misses cost nothing on the wire. The server's
   * `max_keys_per_getm` bounds the keys.
   */
  async getMany(keys: readonly Key[], options?: ReadOptions): Promise<(Item | null)[]> {
    const getm = this.call(() => commands.getMany(keys, options))
    const barrier = this.send(commands.ping(Opcode.NOOP))
    barrier.catch(() => {})
    const [items] = await Promise.all([getm, barrier])
    return items
  }

  /** One {@link Lookup} per key, in order, from one GETM. */
  async lookupMany(keys: readonly Key[], options: LookupOptions = {}): Promise<Lookup[]> {
    const found = await this.call(() => commands.lookupMany(keys, options, false))
    return found.map((lookup) => {
      if (lookup === null) {
        throw new ProtocolError(this.address, 'GETM left a key unanswered')
      }
      return lookup
    })
  }

  /** Stores `value` under `key`. See {@link Client.set}. */
  set(key: Key, value: Value, options?: SetOptions): Promise<SetResult> {
    return this.call(() => commands.set(key, value, options))
  }

  /** Removes `key`; whether a live entry was there. */
  delete(key: Key): Promise<boolean> {
    return this.call(() => commands.del(key))
  }

  /** Resets the TTL of `key` to `ttl` seconds (0: never expire); whether a live entry was there. */
  touch(key: Key, ttl: number): Promise<boolean> {
    return this.call(() => commands.touch(key, ttl))
  }

  /** Invalidates every entry on this server carrying any of `tags`, hard or soft; the invalidation's sequence. */
  invalidateTags(tags: readonly string[], options?: InvalidateOptions): Promise<bigint> {
    return this.call(() => commands.invalidateTags(tags, options))
  }

  /** Removes (or, soft, makes stale) every entry on this server; the flush's sequence. */
  flushAll(options?: InvalidateOptions): Promise<bigint> {
    return this.call(() => commands.flushAll(options))
  }

  /** What this server knows of each of `tags`. */
  tagStatus(tags: readonly string[]): Promise<TagReport> {
    return this.call(() => commands.tagStatus(tags))
  }

  /** This server's counters (protocol.md §6.10). */
  stats(): Promise<Map<string, string>> {
    return this.call(() => commands.stats())
  }

  /** Checks the server answers. */
  ping(): Promise<void> {
    return this.call(() => commands.ping())
  }

  /** Builds a command (which may refuse its arguments) and sends it. */
  private call<T>(build: () => Command<T>): Promise<T> {
    let command: Command<T>
    try {
      command = build()
    } catch (error) {
      return Promise.reject(error)
    }
    return this.send(command)
  }
}

function isComplete(entry: Entry): boolean {
  const last = entry.frames[entry.frames.length - 1]
  if (last === undefined) {
    return false
  }
  if (isErrorStatus(last.status)) {
    // A GETM that fails as a whole sends one error frame instead of one per key.
    return true
  }
  const expected = entry.command.frameCount
  if (entry.quiet && entry.opcode === Opcode.GETM) {
    // With QUIET only the keys' answers that are not plain misses come, in
    // key order: the last key's is the last frame. Otherwise the next
    // request's frame tells (see `deliver`).
    return peekKeyIndex(last) === expected - 1 || entry.frames.length >= expected
  }
  return entry.frames.length >= expected
}

function opcodeName(opcode: number): string {
  return Object.entries(Opcode).find(([, code]) => code === opcode)?.[0] ?? `opcode 0x${opcode.toString(16)}`
}
