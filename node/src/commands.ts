/**
 * Every command, written once: the options it takes, the request it sends
 * (through protocol.ts) and how its response frames become its answer.
 * {@link Connection} and {@link Client} only carry these calls; a new
 * command is a function here and a method on each.
 *
 * Each reader accepts only the statuses protocol.md gives its command: an
 * error status is a {@link ServerError}, anything else unexpected a
 * {@link ProtocolError} for that request (the frame was matched by opaque
 * and opcode, so the connection stays usable). A body that does not parse
 * throws {@link MalformedFrame}, on which the connection closes.
 *
 * @module
 */

import { InvalidArgumentError, ProtocolError, ServerError } from './errors.js'
import {
  Flag,
  MalformedFrame,
  Opcode,
  SetMode as WireSetMode,
  Status,
  decodeEmpty,
  decodeHello,
  decodeLookup,
  decodeStats,
  decodeTagStatus,
  decodeU64,
  encodeDelete,
  encodeEmpty,
  encodeFlushAll,
  encodeGet,
  encodeGetMany,
  encodeAuth,
  encodeHello,
  encodeInvalidateTags,
  encodeSet,
  encodeTagStatus,
  encodeTouch,
  isErrorStatus,
  statusName,
  type HelloInfo,
  type RequestFrame,
  type ResponseFrame,
  type WireLookup,
} from './protocol.js'

/** A key: a string (its UTF-8 bytes) or bytes. */
export type Key = string | Uint8Array
/** A value: a string (its UTF-8 bytes) or bytes. */
export type Value = string | Uint8Array

/** A live entry, as a read found it. */
export interface Item {
  /** The stored bytes. */
  readonly value: Buffer
  /** The entry's CAS value, for a later `set` with `cas` (never 0). */
  readonly cas: bigint
  /** The flags given to `set`; opaque to the server. */
  readonly clientFlags: number
  /**
   * The server's invalidation sequence when it answered: the fence for a
   * later fenced `set` of this key on the same server (protocol.md §8.2).
   */
  readonly fence: bigint
  /** The entry's tags, sorted by their bytes, when the read asked (`withTags`); otherwise empty. */
  readonly tags: readonly string[]
  /**
   * Whether the entry is stale (a tag was invalidated softly, or its
   * `staleAfter` passed, protocol.md §8.3). Only a read with `allowStale`
   * is answered a stale entry; to the others it is a miss.
   */
  readonly stale: boolean
}

/**
 * The answer to one key of a {@link Client.lookup}: what `get` answers,
 * plus the fence of a miss, the refresh lease and the hot miss.
 *
 * - `HIT`: a fresh entry.
 * - `STALE`: a stale entry (reads with `allowStale` only); `lease` is the
 *   refresh lease if the read asked for one and this reader is to refresh
 *   the key, `null` while another reader holds it.
 * - `MISS`: no live entry, or a stale one the read did not allow; `lease`
 *   is the refresh lease if the read asked for one and got it: this reader
 *   computes the value and stores it with `set(key, value, { lease })`.
 * - `HOT_MISS`: no fresh entry and another reader holds the lease (reads
 *   with `lease` only): someone is recomputing it; read again shortly.
 *
 * Every answer carries the fence (protocol.md §8.2). A lease or a fence
 * belongs to the server that answered: send the `set` through the same
 * client, which sends it to the same server while the key's placement is
 * unchanged.
 */
export type Lookup =
  | { readonly status: 'HIT'; readonly item: Item; readonly fence: bigint; readonly lease: null }
  | { readonly status: 'STALE'; readonly item: Item; readonly fence: bigint; readonly lease: bigint | null }
  | { readonly status: 'MISS'; readonly item: null; readonly fence: bigint; readonly lease: bigint | null }
  | { readonly status: 'HOT_MISS'; readonly item: null; readonly fence: bigint; readonly lease: null }

/**
 * The fence of a miss that no server answered (the key's server is marked
 * down): older than any fence a server hands out, so a SET fenced with it
 * is refused if any of its tags was ever invalidated (protocol.md §8.2).
 */
export const UNAVAILABLE_FENCE = 1n

/** How to read, for `get` and `getMany`. Every option but `withTags` needs a server that offers it. */
export interface ReadOptions {
  /** Fill in each hit's `tags`. */
  readonly withTags?: boolean
  /** Answer a stale entry with its value (`stale: true`) instead of as a miss (protocol.md §8.3). */
  readonly allowStale?: boolean
  /**
   * Tags checked against the entry as if it carried them, without being
   * stored with it (protocol.md §8.5): an entry stored before a hard
   * invalidation of one of them misses, before a soft one is stale.
   * Next.js's implicit path tags. Empty or absent: none are sent.
   */
  readonly requestTags?: readonly string[]
}

/** How to read, for `lookup` and `lookupMany`: {@link ReadOptions} and the refresh lease. */
export interface LookupOptions extends ReadOptions {
  /**
   * Ask for the key's refresh lease (protocol.md §8.4): the first reader
   * that finds no fresh entry is granted it (`lease` in its answer) and
   * should recompute the value; while it is held, the others get
   * `HOT_MISS`, or the stale copy if they allow stale data.
   */
  readonly lease?: boolean
}

/** When a `set` may store (protocol.md §6.5). */
export type SetMode = 'set' | 'add' | 'replace' | 'cas'

/** How to store a value. The default stores unconditionally, forever, untagged. */
export interface SetOptions {
  /** Seconds until the entry expires, rounded up to whole seconds; 0 or absent: never. */
  readonly ttl?: number
  /** The entry's tags; order and repeats do not matter. */
  readonly tags?: readonly string[]
  /** A u32 returned with every hit; opaque to the server. */
  readonly clientFlags?: number
  /**
   * `set` (the default, or `cas` when `cas` is given): always; `add`: only
   * if absent; `replace`: only if present; `cas`: only if the entry's CAS
   * value is `cas`.
   */
  readonly mode?: SetMode
  /** The CAS value from a read, for mode `cas`. */
  readonly cas?: bigint
  /**
   * A fence from a read of the key on the same server: the value is
   * refused (`FENCED`) if one of its tags was invalidated after it
   * (protocol.md §8.2).
   */
  readonly fence?: bigint
  /**
   * The refresh lease a read granted: stored only while it is the key's
   * lease (else `LEASE_LOST`), and refused (`FENCED`) if one of the tags
   * was invalidated since the grant (protocol.md §6.5).
   */
  readonly lease?: bigint
  /**
   * Seconds after which the entry turns stale (served only to reads that
   * allow stale data, with a refresh lease to one of them) until its TTL
   * ends; rounded up. Next.js's `revalidate`, with `ttl` its `expire`.
   */
  readonly staleAfter?: number
}

/** How a `set` ended. `STORED` carries the new entry's CAS value. */
export type SetResult =
  | { readonly status: 'STORED'; readonly stored: true; readonly cas: bigint }
  | {
      readonly status: 'NOT_STORED' | 'EXISTS' | 'NOT_FOUND' | 'FENCED' | 'LEASE_LOST'
      readonly stored: false
      readonly cas: null
    }

/** Hard (the default), or soft: stale for `expire` seconds, then gone (protocol.md §8.3). */
export interface InvalidateOptions {
  /** Invalidate softly: entries are stale for `expire` seconds, then misses. */
  readonly soft?: boolean
  /** The soft window in seconds, rounded up; 3600 if absent; 0 makes it hard. Only with `soft`. */
  readonly expire?: number
}

/** The soft window when {@link InvalidateOptions.expire} is absent: an hour, as `tagcached-cli`. */
export const DEFAULT_SOFT_EXPIRE = 3600

/** One invalidation, as a server numbered it. */
export interface Invalidation {
  /** Its invalidation sequence on the server that answered. */
  readonly seq: bigint
  /** When the server numbered it, Unix milliseconds. */
  readonly at: number
}

/** One soft invalidation: entries stored before it are stale until `until`, misses after. */
export interface SoftInvalidation extends Invalidation {
  /** When its window ends, Unix milliseconds. */
  readonly until: number
}

/**
 * What one server knows of one tag (protocol.md §6.11). `hard` and `soft`
 * both `null`: no shard of the server remembers an invalidation of it,
 * either never invalidated or forgotten since; to fences and
 * request-scoped tags it then reads as invalidated at the report's
 * `forgotten`.
 */
export interface TagState {
  /** The tag, as asked. */
  readonly tag: string
  /** Entries the server holds that carry the tag (an upper bound on the live ones). */
  readonly entries: number
  /** Its latest hard invalidation the server remembers. */
  readonly hard: Invalidation | null
  /** Its latest soft invalidation the server remembers. */
  readonly soft: SoftInvalidation | null
  /** The later of `hard.at` and `soft.at`, Unix milliseconds; `null` if neither. */
  readonly lastInvalidated: number | null
}

/** One server's answer to TAG_STATUS. */
export interface TagReport {
  /** The server, as given to the client. */
  readonly server: string
  /** Its current invalidation sequence. */
  readonly seq: bigint
  /** Its clock when it answered, Unix milliseconds. */
  readonly now: number
  /** The newest invalidation any of its shards has forgotten (their floor, §8.2). */
  readonly forgotten: Invalidation
  /** One per tag asked, in the order asked. */
  readonly tags: readonly TagState[]
  /**
   * The latest invalidation, hard or soft, of any of the tags that the
   * server remembers, Unix milliseconds; `null` if none. Across servers the
   * latest of these is the tags' last invalidation (Next.js's
   * `getExpiration`): times compare across servers, sequences do not.
   */
  readonly lastInvalidated: number | null
}

/**
 * A command ready to send: its frame, how many frames answer it, what it
 * needs of the server, and how to read its answer.
 */
export interface Command<T> {
  readonly frame: RequestFrame
  /** Frames that answer it when no error does and it is not quiet: GETM's key count, else 1. */
  readonly frameCount: number
  /** Features the server must offer (HELLO, protocol.md §6.1); checked before sending. */
  readonly needs: Needs
  /** The answer from the request's frames (none, for a quiet request that succeeded silently). */
  read(frames: readonly ResponseFrame[], server: string): T
}

/** Features a request needs. */
export interface Needs {
  readonly staleWhileRevalidate: boolean
  readonly leases: boolean
}

const NEEDS_NOTHING: Needs = { staleWhileRevalidate: false, leases: false }

/** Checks `needs` against a server's HELLO; returns what is missing, or `null`. */
export function missingFeature(needs: Needs, hello: HelloInfo): string | null {
  if (needs.staleWhileRevalidate && !hello.features.staleWhileRevalidate) {
    return 'stale-while-revalidate (stale reads, request-scoped tags, stale windows, soft invalidation, TAG_STATUS)'
  }
  if (needs.leases && !hello.features.leases) {
    return 'refresh leases'
  }
  return null
}

// ---------------------------------------------------------------------------
// Arguments

/** The bytes of a key or value: a string's UTF-8, or the bytes themselves without a copy. */
function bytesOf(input: Key | Value, what: string): Buffer {
  if (typeof input === 'string') {
    return Buffer.from(input, 'utf8')
  }
  if (input instanceof Uint8Array) {
    return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength)
  }
  throw new InvalidArgumentError(`a ${what} must be a string or a Uint8Array, not ${typeof input}`)
}

/** `key`'s bytes, without a copy for bytes. */
export function keyBytes(key: Key): Buffer {
  return bytesOf(key, 'key')
}

/** Tags as the wire carries them: each a string's UTF-8 bytes. */
export function tagBytes(tags: readonly string[], what = 'tag'): Buffer[] {
  if (!Array.isArray(tags)) {
    throw new InvalidArgumentError(`${what}s must be an array of strings`)
  }
  return tags.map((tag) => {
    if (typeof tag !== 'string') {
      throw new InvalidArgumentError(`a ${what} must be a string, not ${typeof tag}`)
    }
    return Buffer.from(tag, 'utf8')
  })
}

/**
 * A TTL or window in seconds on the wire: rounded up to whole seconds, so
 * that a short but non-zero one never becomes 0 (which means "never" or
 * "hard").
 */
export function wholeSeconds(seconds: number, what: string): number {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new InvalidArgumentError(`${what} must be a finite number of seconds, at least 0, not ${String(seconds)}`)
  }
  const whole = Math.ceil(seconds)
  if (whole > 0xffff_ffff) {
    throw new InvalidArgumentError(`${what} of ${seconds} seconds does not fit the wire's u32`)
  }
  return whole
}

function readFlags(options: ReadOptions, lease: boolean): number {
  let flags = 0
  if (options.withTags === true) flags |= Flag.WITH_TAGS
  if (options.allowStale === true) flags |= Flag.ALLOW_STALE
  if (lease) flags |= Flag.LEASE
  return flags
}

function readNeeds(options: ReadOptions, lease: boolean): Needs {
  const requestTags = options.requestTags !== undefined && options.requestTags.length > 0
  return { staleWhileRevalidate: options.allowStale === true || requestTags, leases: lease }
}

function requestTagBytes(options: ReadOptions): Buffer[] | null {
  const tags = options.requestTags
  return tags === undefined || tags.length === 0 ? null : tagBytes(tags, 'request-scoped tag')
}

// ---------------------------------------------------------------------------
// Answers

function serverError(frame: ResponseFrame, server: string): ServerError {
  return new ServerError(server, frame.status, statusName(frame.status), frame.body.toString('utf8'))
}

/** The error for a frame its command cannot have. */
function unexpected(frame: ResponseFrame, server: string, command: string): Error {
  if (isErrorStatus(frame.status)) {
    return serverError(frame, server)
  }
  return new ProtocolError(server, `status ${statusName(frame.status)} in answer to ${command}`)
}

/** The one frame of a single-frame command. */
function single(frames: readonly ResponseFrame[], server: string, command: string): ResponseFrame {
  const [frame] = frames
  if (frame === undefined || frames.length !== 1) {
    throw new ProtocolError(server, `${command} answered with ${frames.length} frames, expected 1`)
  }
  return frame
}

function toItem(wire: WireLookup, stale: boolean): Item | null {
  if (wire.entry === null) {
    return null
  }
  return {
    value: ownBytes(wire.entry.value),
    cas: wire.entry.cas,
    clientFlags: wire.entry.clientFlags,
    fence: wire.fence,
    tags: wire.entry.tags.map((tag) => tag.toString('utf8')),
    stale,
  }
}

/**
 * `bytes`, copied if it is a view into a larger buffer (a chunk read from
 * the socket holding other frames), so that an item kept by the
 * application does not keep that whole chunk alive.
 */
function ownBytes(bytes: Buffer): Buffer {
  return bytes.byteOffset === 0 && bytes.length === bytes.buffer.byteLength ? bytes : Buffer.from(bytes)
}

function leaseOf(wire: WireLookup): bigint | null {
  return wire.lease === null || wire.lease === 0n ? null : wire.lease
}

/** A lookup frame as a {@link Lookup}. */
function toLookup(wire: WireLookup): Lookup {
  switch (wire.status) {
    case Status.HIT:
      return { status: 'HIT', item: toItem(wire, false) as Item, fence: wire.fence, lease: null }
    case Status.STALE:
      return { status: 'STALE', item: toItem(wire, true) as Item, fence: wire.fence, lease: leaseOf(wire) }
    case Status.MISS:
      return { status: 'MISS', item: null, fence: wire.fence, lease: leaseOf(wire) }
    case Status.HOT_MISS:
      return { status: 'HOT_MISS', item: null, fence: wire.fence, lease: null }
  }
}

/** A lookup frame of GET or GETM; HOT_MISS only answers a read with LEASE. */
function readLookup(frame: ResponseFrame, server: string, command: string, lease: boolean): WireLookup {
  const fits =
    frame.status === Status.HIT ||
    frame.status === Status.STALE ||
    frame.status === Status.MISS ||
    (lease && frame.status === Status.HOT_MISS)
  if (!fits) {
    throw unexpected(frame, server, command)
  }
  return decodeLookup(frame, lease)
}

/**
 * A command answered by one frame whose only success is OK, its body read
 * by `decode`.
 */
function okCommand<T>(
  name: string,
  frame: RequestFrame,
  needs: Needs,
  decode: (body: Buffer, server: string) => T,
): Command<T> {
  return {
    frame,
    frameCount: 1,
    needs,
    read(frames, server) {
      const answer = single(frames, server, name)
      if (answer.status !== Status.OK) throw unexpected(answer, server, name)
      return decode(answer.body, server)
    },
  }
}

// ---------------------------------------------------------------------------
// The commands

/** HELLO (§6.1). */
export function hello(wantShard: number | null, clientName: string): Command<HelloInfo> {
  return okCommand('HELLO', encodeHello(wantShard, clientName), NEEDS_NOTHING, decodeHello)
}

/** AUTH (§6.12): OK, or AUTH_FAILED (a {@link ServerError}), after which the server closes. */
export function auth(token: Buffer): Command<void> {
  return okCommand('AUTH', encodeAuth(token), NEEDS_NOTHING, (body) => decodeEmpty(body, 'AUTH response'))
}

/** PING or NOOP (§6.2). */
export function ping(opcode: typeof Opcode.PING | typeof Opcode.NOOP = Opcode.PING): Command<void> {
  const name = opcode === Opcode.PING ? 'PING' : 'NOOP'
  return okCommand(name, encodeEmpty(opcode), NEEDS_NOTHING, (body) => decodeEmpty(body, `${name} response`))
}

/** GET (§6.3) as a full {@link Lookup}. */
export function lookup(key: Key, options: LookupOptions = {}): Command<Lookup> {
  const lease = options.lease === true
  return {
    frame: encodeGet(keyBytes(key), readFlags(options, lease), requestTagBytes(options)),
    frameCount: 1,
    needs: readNeeds(options, lease),
    read(frames, server) {
      return toLookup(readLookup(single(frames, server, 'GET'), server, 'GET', lease))
    },
  }
}

/** GET (§6.3): the item, fresh or (with `allowStale`) stale, or `null`. */
export function get(key: Key, options: ReadOptions = {}): Command<Item | null> {
  refuseLease(options, 'get')
  const command = lookup(key, options)
  return { ...command, read: (frames, server) => command.read(frames, server).item }
}

/**
 * GETM (§6.4) of `keys`, one answer per key in order. With `quiet`, the
 * request is QUIET (plain misses are not sent, and read as `null`), and
 * the caller must follow it with a request that is not quiet, whose answer
 * shows this one complete.
 */
export function lookupMany(keys: readonly Key[], options: LookupOptions, quiet: boolean): Command<(Lookup | null)[]> {
  const lease = options.lease === true
  const keyCount = keys.length
  const flags = readFlags(options, lease) | (quiet ? Flag.QUIET : 0)
  return {
    frame: encodeGetMany(keys.map(keyBytes), flags, requestTagBytes(options)),
    frameCount: keyCount,
    needs: readNeeds(options, lease),
    read(frames, server) {
      const answers: (Lookup | null)[] = new Array<Lookup | null>(keyCount).fill(null)
      const answered: boolean[] = new Array<boolean>(keyCount).fill(false)
      for (const frame of frames) {
        const wire = readLookup(frame, server, 'GETM', lease)
        const index = wire.keyIndex
        if (index === null || index >= keyCount) {
          throw new ProtocolError(server, `GETM of ${keyCount} keys answered for key index ${String(index)}`)
        }
        if (answered[index] === true) {
          throw new ProtocolError(server, `GETM answered key index ${index} twice`)
        }
        answered[index] = true
        answers[index] = toLookup(wire)
      }
      if (!quiet) {
        const missing = answered.indexOf(false)
        if (missing !== -1) {
          throw new ProtocolError(server, `GETM left key index ${missing} unanswered`)
        }
      }
      return answers
    },
  }
}

function refuseLease(options: ReadOptions, method: string): void {
  if ((options as LookupOptions).lease === true) {
    throw new InvalidArgumentError(
      `${method}() cannot carry a lease: a granted lease would be lost with the miss; use lookup() or lookupMany()`,
    )
  }
}

/** GETM for `getMany`: quiet, so misses cost nothing on the wire; see {@link lookupMany}. */
export function getMany(keys: readonly Key[], options: ReadOptions = {}): Command<(Item | null)[]> {
  refuseLease(options, 'getMany')
  const command = lookupMany(keys, options, true)
  return { ...command, read: (frames, server) => command.read(frames, server).map((found) => found?.item ?? null) }
}

const SET_STATUSES = new Map<number, 'NOT_STORED' | 'EXISTS' | 'NOT_FOUND' | 'FENCED' | 'LEASE_LOST'>([
  [Status.NOT_STORED, 'NOT_STORED'],
  [Status.EXISTS, 'EXISTS'],
  [Status.NOT_FOUND, 'NOT_FOUND'],
  [Status.FENCED, 'FENCED'],
  [Status.LEASE_LOST, 'LEASE_LOST'],
])

function setMode(options: SetOptions): number {
  const mode = options.mode ?? (options.cas === undefined ? 'set' : 'cas')
  if ((mode === 'cas') !== (options.cas !== undefined)) {
    throw new InvalidArgumentError('mode cas and the cas option go together')
  }
  switch (mode) {
    case 'set':
      return WireSetMode.SET
    case 'add':
      return WireSetMode.ADD
    case 'replace':
      return WireSetMode.REPLACE
    case 'cas':
      return WireSetMode.CAS
    default:
      throw new InvalidArgumentError(`unknown set mode ${String(mode)}`)
  }
}

function checkBigint(value: bigint | undefined, what: string): bigint | null {
  if (value === undefined) {
    return null
  }
  if (typeof value !== 'bigint') {
    throw new InvalidArgumentError(`${what} must be a bigint, as read returned it, not ${typeof value}`)
  }
  return value
}

/** SET (§6.5). */
export function set(key: Key, value: Value, options: SetOptions = {}): Command<SetResult> {
  const lease = checkBigint(options.lease, 'lease')
  if (lease === 0n) {
    throw new InvalidArgumentError('lease 0 is no lease: leave the option out')
  }
  const staleAfter = options.staleAfter === undefined ? null : wholeSeconds(options.staleAfter, 'staleAfter')
  const frame = encodeSet({
    mode: setMode(options),
    key: keyBytes(key),
    value: bytesOf(value, 'value'),
    tags: tagBytes(options.tags ?? []),
    clientFlags: options.clientFlags ?? 0,
    ttl: options.ttl === undefined ? 0 : wholeSeconds(options.ttl, 'ttl'),
    cas: checkBigint(options.cas, 'cas') ?? 0n,
    fence: checkBigint(options.fence, 'fence') ?? 0n,
    lease,
    staleAfter,
    quiet: false,
  })
  return {
    frame,
    frameCount: 1,
    needs: { staleWhileRevalidate: staleAfter !== null, leases: lease !== null },
    read(frames, server) {
      const frame = single(frames, server, 'SET')
      if (frame.status === Status.STORED) {
        return { status: 'STORED', stored: true, cas: decodeU64(frame.body, 'SET STORED response', 'cas') }
      }
      const status = SET_STATUSES.get(frame.status)
      if (status === undefined) throw unexpected(frame, server, 'SET')
      decodeEmpty(frame.body, `SET ${status} response`)
      return { status, stored: false, cas: null }
    },
  }
}

function found(name: string): (frames: readonly ResponseFrame[], server: string) => boolean {
  return (frames, server) => {
    const frame = single(frames, server, name)
    if (frame.status !== Status.OK && frame.status !== Status.NOT_FOUND) throw unexpected(frame, server, name)
    decodeEmpty(frame.body, `${name} response`)
    return frame.status === Status.OK
  }
}

/** DELETE (§6.6): whether a live entry was removed. */
export function del(key: Key): Command<boolean> {
  return { frame: encodeDelete(keyBytes(key)), frameCount: 1, needs: NEEDS_NOTHING, read: found('DELETE') }
}

/** TOUCH (§6.7): whether a live entry's TTL was reset. */
export function touch(key: Key, ttl: number): Command<boolean> {
  return {
    frame: encodeTouch(keyBytes(key), wholeSeconds(ttl, 'ttl')),
    frameCount: 1,
    needs: NEEDS_NOTHING,
    read: found('TOUCH'),
  }
}

/** The soft window `options` ask for, or `null` for a hard invalidation. */
export function softExpire(options: InvalidateOptions): number | null {
  if (options.soft !== true) {
    if (options.expire !== undefined) {
      throw new InvalidArgumentError('expire is the window of a soft invalidation: give soft: true too')
    }
    return null
  }
  return wholeSeconds(options.expire ?? DEFAULT_SOFT_EXPIRE, 'expire')
}

/** INVALIDATE_TAGS and FLUSH_ALL (a soft one needs stale-while-revalidate): the sequence number. */
function sequenced(name: string, frame: RequestFrame, soft: boolean): Command<bigint> {
  return okCommand(name, frame, { staleWhileRevalidate: soft, leases: false }, (body) =>
    decodeU64(body, `${name} response`, 'seq'),
  )
}

/** INVALIDATE_TAGS (§6.8), hard or soft: the invalidation's sequence number. */
export function invalidateTags(tags: readonly string[], options: InvalidateOptions = {}): Command<bigint> {
  const expire = softExpire(options)
  return sequenced('INVALIDATE_TAGS', encodeInvalidateTags(tagBytes(tags), expire), expire !== null)
}

/** FLUSH_ALL (§6.9), hard or soft: the flush's sequence number. */
export function flushAll(options: InvalidateOptions = {}): Command<bigint> {
  const expire = softExpire(options)
  return sequenced('FLUSH_ALL', encodeFlushAll(expire), expire !== null)
}

/** TAG_STATUS (§6.11). */
export function tagStatus(tags: readonly string[]): Command<TagReport> {
  const asked = [...tags]
  const frame = encodeTagStatus(tagBytes(asked))
  return okCommand('TAG_STATUS', frame, { staleWhileRevalidate: true, leases: false }, (body, server) => {
    const wire = decodeTagStatus(body)
    if (wire.statuses.length !== asked.length) {
      throw new MalformedFrame(`TAG_STATUS of ${asked.length} tags answered for ${wire.statuses.length}`)
    }
    const states = wire.statuses.map((state, index): TagState => {
      const hard = state.hardSeq === 0n ? null : { seq: state.hardSeq, at: state.hardAt }
      const soft = state.softSeq === 0n ? null : { seq: state.softSeq, at: state.softAt, until: state.softUntil }
      return {
        tag: asked[index] ?? '',
        entries: state.entries,
        hard,
        soft,
        lastInvalidated: latest([hard?.at ?? null, soft?.at ?? null]),
      }
    })
    return {
      server,
      seq: wire.seq,
      now: wire.now,
      forgotten: { seq: wire.forgottenSeq, at: wire.forgottenAt },
      tags: states,
      lastInvalidated: latest(states.map((state) => state.lastInvalidated)),
    }
  })
}

/** The latest of some times, ignoring `null`s; `null` if none. */
export function latest(times: readonly (number | null)[]): number | null {
  let latestTime: number | null = null
  for (const time of times) {
    if (time !== null && (latestTime === null || time > latestTime)) {
      latestTime = time
    }
  }
  return latestTime
}

/** STATS (§6.10): the counters, by name, in the server's order. */
export function stats(): Command<Map<string, string>> {
  return okCommand('STATS', encodeEmpty(Opcode.STATS), NEEDS_NOTHING, decodeStats)
}
