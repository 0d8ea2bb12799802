/**
 * The client's errors: one class per way a request can fail, each with a
 * stable `code` to branch on and, where one server is concerned, that
 * server's address as given to the client (`server`).
 *
 * Outcomes that are answers rather than failures (a miss, `NOT_STORED`,
 * `FENCED`, `LEASE_LOST`, ...) are not errors: they are in the return types
 * of the commands.
 *
 * @module
 */

/** Every `code` a {@link TagcachedError} can have. */
export type ErrorCode =
  | 'TAGCACHED_CONNECTION'
  | 'TAGCACHED_TIMEOUT'
  | 'TAGCACHED_SERVER_ERROR'
  | 'TAGCACHED_PROTOCOL'
  | 'TAGCACHED_INVALID_ARGUMENT'
  | 'TAGCACHED_UNSUPPORTED'
  | 'TAGCACHED_SERVER_DOWN'
  | 'TAGCACHED_UNACKNOWLEDGED'
  | 'TAGCACHED_CLOSED'
  | 'TAGCACHED_AUTH'

/** The base class of every error this package throws. */
export abstract class TagcachedError extends Error {
  /** What kind of failure this is; stable across versions. */
  abstract readonly code: ErrorCode
  /** The server concerned, `host:port` as given to the client; `null` when no one server is. */
  readonly server: string | null

  protected constructor(server: string | null, message: string, options?: { cause?: unknown }) {
    super(server === null ? message : `${server}: ${message}`, options)
    this.name = new.target.name
    this.server = server
  }

  /**
   * Whether the server could not be used for this request: the connection
   * failed or closed, the request timed out, the server is marked down, or
   * it answered BUSY, INTERNAL or SHUTTING_DOWN. Such failures count
   * towards marking a server down, and an invalidation that fails this way
   * may not have reached the server. Other errors (a bad key, a tag the
   * server refuses) would fail again the same way.
   */
  get unavailable(): boolean {
    return false
  }
}

/** Connecting, reading or writing failed, or the connection closed; the connection is unusable. */
export class ConnectionError extends TagcachedError {
  readonly code = 'TAGCACHED_CONNECTION'

  constructor(server: string, message: string, options?: { cause?: unknown }) {
    super(server, message, options)
  }

  override get unavailable(): boolean {
    return true
  }
}

/**
 * No answer within the request (or connect) timeout. The connection stays
 * usable: a late response is read and dropped.
 */
export class TimeoutError extends TagcachedError {
  readonly code = 'TAGCACHED_TIMEOUT'
  /** The timeout that ran out, in milliseconds. */
  readonly timeout: number

  constructor(server: string, what: string, timeout: number) {
    super(server, `${what} timed out after ${timeout} ms`)
    this.timeout = timeout
  }

  override get unavailable(): boolean {
    return true
  }
}

/**
 * The server answered with an error status (protocol.md §4): `status` is
 * its code, `statusName` its name (`KEY_INVALID`), and the message ends
 * with the server's own detail. A fatal status also closes the connection.
 */
export class ServerError extends TagcachedError {
  readonly code = 'TAGCACHED_SERVER_ERROR'
  /** The status code, e.g. `0x0106`. */
  readonly status: number
  /** The status's name in protocol.md, e.g. `KEY_INVALID`, or its code in hex if unknown. */
  readonly statusName: string
  /** The server's human-readable detail. */
  readonly detail: string

  constructor(server: string, status: number, statusName: string, detail: string) {
    const hex = `0x${status.toString(16).padStart(4, '0')}`
    super(server, `${statusName} (${hex})${detail === '' ? '' : `: ${detail}`}`)
    this.status = status
    this.statusName = statusName
    this.detail = detail
  }

  override get unavailable(): boolean {
    // BUSY, INTERNAL, SHUTTING_DOWN: the server could not serve, not the
    // request's fault.
    return this.status === 0x010d || this.status === 0x010e || this.status === 0x010f
  }
}

/**
 * The server requires authentication (protocol.md §6.12) and refused the
 * connection's token (AUTH_FAILED), or no `authToken` was given. The
 * connection is closed; new ones fail the same way until the token or the
 * server's tokens change. Counts as the server being unavailable.
 */
export class AuthenticationError extends TagcachedError {
  readonly code = 'TAGCACHED_AUTH'

  constructor(server: string, message: string, options?: { cause?: unknown }) {
    super(server, message, options)
  }

  override get unavailable(): boolean {
    return true
  }
}

/**
 * The server broke the protocol: a response to no request in flight, an
 * undecodable frame, or a status that makes no sense for the request. A
 * frame that cannot be decoded closes the connection.
 */
export class ProtocolError extends TagcachedError {
  readonly code = 'TAGCACHED_PROTOCOL'

  constructor(server: string, message: string) {
    super(server, `protocol violation: ${message}`)
  }

  override get unavailable(): boolean {
    return true
  }
}

/**
 * The request cannot be sent as asked: a count or length the wire cannot
 * carry, a frame larger than the server's `max_frame`, an option out of
 * range. Nothing was sent.
 */
export class InvalidArgumentError extends TagcachedError {
  readonly code = 'TAGCACHED_INVALID_ARGUMENT'

  constructor(message: string, server: string | null = null) {
    super(server, message)
  }
}

/**
 * The server does not offer what the request needs, by the feature bits of
 * its HELLO (protocol.md §6.1). Nothing was sent.
 */
export class UnsupportedError extends TagcachedError {
  readonly code = 'TAGCACHED_UNSUPPORTED'

  constructor(server: string, message: string) {
    super(server, `not offered by the server: ${message}`)
  }
}

/**
 * The client has marked the key's server down after repeated failures (or
 * after it missed an invalidation) and retries it after a backoff. Nothing
 * was sent. Reads of its keys miss instead of failing with this.
 */
export class ServerDownError extends TagcachedError {
  readonly code = 'TAGCACHED_SERVER_DOWN'

  constructor(server: string, options?: { cause?: unknown }) {
    super(server, 'marked down after repeated failures; retried after a backoff', options)
  }

  override get unavailable(): boolean {
    return true
  }
}

/** One server's failure in an {@link UnacknowledgedError}. */
export interface ServerFailure {
  /** The server, as given to the client. */
  readonly server: string
  /** Why it did not acknowledge. */
  readonly error: TagcachedError
}

/**
 * A command that goes to every server (INVALIDATE_TAGS, FLUSH_ALL,
 * TAG_STATUS, PING) was not acknowledged by some of them; `failures` says
 * which and why. The others did apply it.
 */
export class UnacknowledgedError extends TagcachedError {
  readonly code = 'TAGCACHED_UNACKNOWLEDGED'
  /** How many servers the command went to. */
  readonly servers: number
  /** The servers that did not acknowledge, and why. */
  readonly failures: readonly ServerFailure[]

  constructor(what: string, servers: number, failures: readonly ServerFailure[]) {
    const list = failures.map((failure) => failure.error.message).join('; ')
    super(null, `${what}: ${failures.length} of ${servers} servers did not acknowledge: ${list}`)
    this.servers = servers
    this.failures = failures
  }
}

/** The client or connection was closed by the application. */
export class ClosedError extends TagcachedError {
  readonly code = 'TAGCACHED_CLOSED'

  constructor(server: string | null = null) {
    super(server, 'closed by the application')
  }
}
