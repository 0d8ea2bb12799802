/**
 * The bytes of protocol.md, and nothing else: frame headers, each request
 * body, each response body. No sockets, no state beyond a decoder's
 * buffered bytes.
 *
 * Every length read from the wire is checked before it is used: a frame's
 * `body_length` against the bound the decoder was given, before any of the
 * body is kept; every field against the bytes left in its body. A body that
 * does not parse throws {@link MalformedFrame}, which the connection turns
 * into a {@link ProtocolError} and closes on (the stream cannot be trusted
 * after it). Every value written is checked against its field's range and
 * throws {@link InvalidArgumentError} before anything is sent.
 *
 * u64 fields (fences, CAS values, lease tokens, invalidation sequences)
 * are `bigint`: they exceed 2^53 (a sequence starts at the server's boot
 * time in milliseconds shifted left by 20 bits, protocol.md §8.2).
 *
 * @module
 */

import { InvalidArgumentError } from './errors.js'

/** The first byte of a request frame. */
export const REQUEST_MAGIC = 0xc7
/** The first byte of a response frame. */
export const RESPONSE_MAGIC = 0xc8
/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1
/** Bytes in a frame header. */
export const HEADER_LENGTH = 16
/**
 * The server's default `max_frame` (protocol.md §7). Responses are bounded
 * by the larger of it and the `max_frame` HELLO reports: every answer the
 * server's limits allow fits.
 */
export const DEFAULT_MAX_FRAME = 2_099_492
/** `want_shard` for "any shard" (protocol.md §6.1). */
export const ANY_SHARD = 0xffff

/** The opcodes of protocol.md §3. */
export const Opcode = {
  HELLO: 0x00,
  PING: 0x01,
  NOOP: 0x02,
  GET: 0x10,
  GETM: 0x11,
  SET: 0x20,
  DELETE: 0x21,
  TOUCH: 0x22,
  INVALIDATE_TAGS: 0x30,
  TAG_STATUS: 0x31,
  FLUSH_ALL: 0x40,
  STATS: 0x41,
  AUTH: 0x50,
} as const
/** One of {@link Opcode}'s values. */
export type Opcode = (typeof Opcode)[keyof typeof Opcode]

/** The request flags of protocol.md §2.1. */
export const Flag = {
  QUIET: 0x01,
  WITH_TAGS: 0x02,
  ALLOW_STALE: 0x04,
  LEASE: 0x08,
  REQUEST_TAGS: 0x10,
  STALE_AFTER: 0x20,
  SOFT: 0x40,
} as const

/** The status codes of protocol.md §4. */
export const Status = {
  OK: 0x0000,
  HIT: 0x0001,
  MISS: 0x0002,
  STORED: 0x0003,
  NOT_STORED: 0x0004,
  EXISTS: 0x0005,
  NOT_FOUND: 0x0006,
  FENCED: 0x0007,
  STALE: 0x0008,
  HOT_MISS: 0x0009,
  LEASE_LOST: 0x000a,
  BAD_MAGIC: 0x0100,
  BAD_VERSION: 0x0101,
  FRAME_TOO_LARGE: 0x0102,
  UNKNOWN_OPCODE: 0x0103,
  BAD_FLAGS: 0x0104,
  MALFORMED: 0x0105,
  KEY_INVALID: 0x0106,
  VALUE_TOO_LARGE: 0x0107,
  TAG_INVALID: 0x0108,
  TOO_MANY_TAGS: 0x0109,
  BAD_TTL: 0x010a,
  TOO_MANY_KEYS: 0x010b,
  OUT_OF_MEMORY: 0x010c,
  BUSY: 0x010d,
  INTERNAL: 0x010e,
  SHUTTING_DOWN: 0x010f,
  AUTH_FAILED: 0x0110,
  AUTH_REQUIRED: 0x0111,
} as const

const STATUS_NAMES = new Map<number, string>(
  Object.entries(Status).map(([name, code]) => [code, name]),
)

/** A status's name in protocol.md (`KEY_INVALID`), or its code in hex if this client does not know it. */
export function statusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `0x${status.toString(16).padStart(4, '0')}`
}

/** Whether a status is an error (protocol.md §4: codes from `0x0100`). */
export function isErrorStatus(status: number): boolean {
  return status >= 0x0100
}

/** Feature bits of HELLO (protocol.md §6.1). */
export const FeatureBit = {
  FENCED_SET: 0,
  SHARD_AWARE: 1,
  STALE_WHILE_REVALIDATE: 2,
  LEASES: 3,
  PENDING_INVALIDATION: 4,
  AUTHENTICATION: 5,
} as const

/** What a server offers, from HELLO's feature bits. */
export interface Features {
  /** Every bit, as sent. */
  readonly bits: bigint
  /** Fenced SET (§8.2). */
  readonly fencedSet: boolean
  /** Shard-aware connections (§9). */
  readonly shardAware: boolean
  /** ALLOW_STALE, REQUEST_TAGS, STALE_AFTER, SOFT and TAG_STATUS (§8.3, §8.5, §6.11). */
  readonly staleWhileRevalidate: boolean
  /** Refresh leases: the LEASE flag (§8.4). */
  readonly leases: boolean
  /** The server requires AUTH before anything but HELLO and PING (§6.12). */
  readonly authentication: boolean
}

/** The server's answer to HELLO (protocol.md §6.1). */
export interface HelloInfo {
  readonly version: number
  readonly shardCount: number
  /** The shard now serving the connection. */
  readonly shard: number
  /** The key-to-shard hash: 1 is FNV-1a 64 (§9). */
  readonly hash: number
  readonly features: Features
  readonly maxFrame: number
  readonly maxKeyLength: number
  readonly maxValueLength: number
  readonly maxTagLength: number
  readonly maxTags: number
  readonly maxKeysPerGetm: number
  readonly maxTtl: number
  /** E.g. `tagcached 0.1.0`. */
  readonly serverVersion: string
}

/** A request ready to send: its whole frame, whose opaque the connection writes. */
export interface RequestFrame {
  readonly opcode: Opcode
  readonly flags: number
  /** Header and body; bytes 8..12 (the opaque) are the connection's to fill. */
  readonly bytes: Buffer
}

/** A response frame: its header's fields and its body, not yet read. */
export interface ResponseFrame {
  readonly opcode: number
  readonly status: number
  readonly opaque: number
  readonly body: Buffer
}

/** A response that does not parse; the connection it came on cannot be trusted. */
export class MalformedFrame extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MalformedFrame'
  }
}

// ---------------------------------------------------------------------------
// Requests

const U16_MAX = 0xffff
const U32_MAX = 0xffff_ffff
const U64_MAX = (1n << 64n) - 1n

function checkU16(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > U16_MAX) {
    throw new InvalidArgumentError(`${what} must be an integer in 0..=65535, not ${value}`)
  }
  return value
}

function checkU32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new InvalidArgumentError(`${what} must be an integer in 0..=4294967295, not ${value}`)
  }
  return value
}

function checkU64(value: bigint, what: string): bigint {
  if (value < 0n || value > U64_MAX) {
    throw new InvalidArgumentError(`${what} must be in 0..=2^64-1, not ${value}`)
  }
  return value
}

function checkCount(items: readonly unknown[], what: string): number {
  if (items.length > U16_MAX) {
    throw new InvalidArgumentError(`${items.length} ${what}: one request carries at most 65535`)
  }
  return items.length
}

function checkString(bytes: Buffer, what: string): Buffer {
  if (bytes.length > U16_MAX) {
    throw new InvalidArgumentError(`a ${what} of ${bytes.length} bytes: the wire carries at most 65535`)
  }
  return bytes
}

/** Bytes of a list of strings on the wire: a u16 length before each. */
function stringsLength(strings: readonly Buffer[], what: string): number {
  let length = 0
  for (const string of strings) {
    length += 2 + checkString(string, what).length
  }
  return length
}

/** Writes one frame into a buffer of exactly its size. */
class FrameWriter {
  private readonly bytes: Buffer
  private at = HEADER_LENGTH

  constructor(
    private readonly opcode: Opcode,
    private readonly flags: number,
    bodyLength: number,
  ) {
    if (bodyLength > U32_MAX) {
      throw new InvalidArgumentError(`a body of ${bodyLength} bytes: the wire carries at most 4294967295`)
    }
    const bytes = Buffer.allocUnsafe(HEADER_LENGTH + bodyLength)
    bytes[0] = REQUEST_MAGIC
    bytes[1] = PROTOCOL_VERSION
    bytes[2] = opcode
    bytes[3] = flags
    bytes.writeUInt16BE(0, 4) // status: 0 in a request
    bytes.writeUInt16BE(0, 6) // reserved
    bytes.writeUInt32BE(0, 8) // opaque: the connection's
    bytes.writeUInt32BE(bodyLength, 12)
    this.bytes = bytes
  }

  u8(value: number): this {
    this.bytes[this.at] = value
    this.at += 1
    return this
  }

  u16(value: number): this {
    this.bytes.writeUInt16BE(value, this.at)
    this.at += 2
    return this
  }

  u32(value: number): this {
    this.bytes.writeUInt32BE(value, this.at)
    this.at += 4
    return this
  }

  u64(value: bigint): this {
    this.bytes.writeBigUInt64BE(value, this.at)
    this.at += 8
    return this
  }

  raw(bytes: Buffer): this {
    bytes.copy(this.bytes, this.at)
    this.at += bytes.length
    return this
  }

  string(bytes: Buffer): this {
    return this.u16(bytes.length).raw(bytes)
  }

  strings(list: readonly Buffer[]): this {
    for (const bytes of list) {
      this.string(bytes)
    }
    return this
  }

  finish(): RequestFrame {
    if (this.at !== this.bytes.length) {
      throw new Error(`frame writer: wrote ${this.at} of ${this.bytes.length} bytes`)
    }
    return { opcode: this.opcode, flags: this.flags, bytes: this.bytes }
  }
}

/** HELLO (§6.1): the highest version spoken, the shard wanted (`null`: any) and a name for logs. */
export function encodeHello(wantShard: number | null, clientName: string): RequestFrame {
  const shard = wantShard === null ? ANY_SHARD : checkU16(wantShard, 'want_shard')
  const name = Buffer.from(clientName, 'utf8')
  return new FrameWriter(Opcode.HELLO, 0, 3 + name.length)
    .u8(PROTOCOL_VERSION)
    .u16(shard)
    .raw(name)
    .finish()
}

/** The longest token AUTH carries, in bytes (§6.12). */
export const MAX_TOKEN_LENGTH = 512

/** AUTH (§6.12): the token, 1 to {@link MAX_TOKEN_LENGTH} bytes, as the body. */
export function encodeAuth(token: Buffer): RequestFrame {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new InvalidArgumentError(`an auth token is 1 to ${MAX_TOKEN_LENGTH} bytes, not ${token.length}`)
  }
  return new FrameWriter(Opcode.AUTH, 0, token.length).raw(token).finish()
}

/** PING or NOOP (§6.2): empty bodies. */
export function encodeEmpty(opcode: typeof Opcode.PING | typeof Opcode.NOOP | typeof Opcode.STATS): RequestFrame {
  return new FrameWriter(opcode, 0, 0).finish()
}

/** GET (§6.3) of `key` with `flags`; `requestTags` non-null adds REQUEST_TAGS and its body prefix. */
export function encodeGet(key: Buffer, flags: number, requestTags: readonly Buffer[] | null): RequestFrame {
  if (requestTags === null) {
    return new FrameWriter(Opcode.GET, flags, key.length).raw(key).finish()
  }
  const count = checkCount(requestTags, 'request-scoped tags')
  const length = 2 + stringsLength(requestTags, 'tag') + key.length
  return new FrameWriter(Opcode.GET, flags | Flag.REQUEST_TAGS, length)
    .u16(count)
    .strings(requestTags)
    .raw(key)
    .finish()
}

/** GETM (§6.4) of `keys` with `flags`; `requestTags` non-null adds REQUEST_TAGS and its body prefix. */
export function encodeGetMany(
  keys: readonly Buffer[],
  flags: number,
  requestTags: readonly Buffer[] | null,
): RequestFrame {
  if (keys.length === 0) {
    throw new InvalidArgumentError('a GETM needs at least one key')
  }
  const keyCount = checkCount(keys, 'keys')
  const keysLength = 2 + stringsLength(keys, 'key')
  if (requestTags === null) {
    return new FrameWriter(Opcode.GETM, flags, keysLength).u16(keyCount).strings(keys).finish()
  }
  const tagCount = checkCount(requestTags, 'request-scoped tags')
  const length = 2 + stringsLength(requestTags, 'tag') + keysLength
  return new FrameWriter(Opcode.GETM, flags | Flag.REQUEST_TAGS, length)
    .u16(tagCount)
    .strings(requestTags)
    .u16(keyCount)
    .strings(keys)
    .finish()
}

/** SET modes (§6.5). */
export const SetMode = { SET: 0, ADD: 1, REPLACE: 2, CAS: 3 } as const

/** The fields of a SET body (§6.5); `lease` and `staleAfter` non-null add their flags. */
export interface SetFields {
  readonly mode: number
  readonly key: Buffer
  readonly value: Buffer
  readonly tags: readonly Buffer[]
  readonly clientFlags: number
  /** Seconds; 0 = never. */
  readonly ttl: number
  readonly cas: bigint
  readonly fence: bigint
  readonly lease: bigint | null
  /** Seconds; 0 = never. */
  readonly staleAfter: number | null
  readonly quiet: boolean
}

/** SET (§6.5). */
export function encodeSet(fields: SetFields): RequestFrame {
  const tagCount = checkCount(fields.tags, 'tags')
  checkU32(fields.clientFlags, 'client_flags')
  checkU32(fields.ttl, 'ttl')
  checkU64(fields.cas, 'cas')
  checkU64(fields.fence, 'fence')
  checkString(fields.key, 'key')
  let flags = fields.quiet ? Flag.QUIET : 0
  let length = 1 + 1 + 2 + 4 + 4 + 8 + 8
  if (fields.lease !== null) {
    checkU64(fields.lease, 'lease')
    flags |= Flag.LEASE
    length += 8
  }
  if (fields.staleAfter !== null) {
    checkU32(fields.staleAfter, 'stale_after')
    flags |= Flag.STALE_AFTER
    length += 4
  }
  length += 2 + fields.key.length + stringsLength(fields.tags, 'tag') + fields.value.length
  const writer = new FrameWriter(Opcode.SET, flags, length)
    .u8(fields.mode)
    .u8(0)
    .u16(tagCount)
    .u32(fields.clientFlags)
    .u32(fields.ttl)
    .u64(fields.cas)
    .u64(fields.fence)
  if (fields.lease !== null) {
    writer.u64(fields.lease)
  }
  if (fields.staleAfter !== null) {
    writer.u32(fields.staleAfter)
  }
  return writer.string(fields.key).strings(fields.tags).raw(fields.value).finish()
}

/** DELETE (§6.6). */
export function encodeDelete(key: Buffer): RequestFrame {
  return new FrameWriter(Opcode.DELETE, 0, key.length).raw(key).finish()
}

/** TOUCH (§6.7): `ttl` in seconds, 0 = never expire. */
export function encodeTouch(key: Buffer, ttl: number): RequestFrame {
  checkU32(ttl, 'ttl')
  return new FrameWriter(Opcode.TOUCH, 0, 4 + key.length).u32(ttl).raw(key).finish()
}

/** INVALIDATE_TAGS (§6.8): hard, or soft with a window of `softExpire` seconds. */
export function encodeInvalidateTags(tags: readonly Buffer[], softExpire: number | null): RequestFrame {
  if (tags.length === 0) {
    throw new InvalidArgumentError('an invalidation needs at least one tag')
  }
  const count = checkCount(tags, 'tags')
  const length = (softExpire === null ? 0 : 4) + 2 + stringsLength(tags, 'tag')
  const writer = new FrameWriter(Opcode.INVALIDATE_TAGS, softExpire === null ? 0 : Flag.SOFT, length)
  if (softExpire !== null) {
    writer.u32(checkU32(softExpire, 'expire'))
  }
  return writer.u16(count).strings(tags).finish()
}

/** FLUSH_ALL (§6.9): hard, or soft with a window of `softExpire` seconds. */
export function encodeFlushAll(softExpire: number | null): RequestFrame {
  if (softExpire === null) {
    return new FrameWriter(Opcode.FLUSH_ALL, 0, 0).finish()
  }
  return new FrameWriter(Opcode.FLUSH_ALL, Flag.SOFT, 4).u32(checkU32(softExpire, 'expire')).finish()
}

/** TAG_STATUS (§6.11). */
export function encodeTagStatus(tags: readonly Buffer[]): RequestFrame {
  if (tags.length === 0) {
    throw new InvalidArgumentError('TAG_STATUS needs at least one tag')
  }
  const count = checkCount(tags, 'tags')
  return new FrameWriter(Opcode.TAG_STATUS, 0, 2 + stringsLength(tags, 'tag'))
    .u16(count)
    .strings(tags)
    .finish()
}

// ---------------------------------------------------------------------------
// Responses

/**
 * Splits response frames off a byte stream. Give it each chunk read from
 * the socket; it returns the frames completed, and keeps the rest.
 *
 * The header is checked as soon as it is whole, before any of the body is
 * kept: magic `0xC8` (checked on the first byte alone), version 1, and
 * `body_length` at most the bound. Too few bytes is never an error.
 */
export class FrameDecoder {
  private chunks: Buffer[] = []
  private buffered = 0
  private header: { opcode: number; status: number; opaque: number; bodyLength: number } | null = null

  /** `maxBody`: the largest `body_length` accepted. */
  constructor(private maxBody: number) {}

  /** Changes the bound, for frames whose header is not yet read. */
  setMaxBody(maxBody: number): void {
    this.maxBody = maxBody
  }

  /** The frames that `chunk` completes, in order. Throws {@link MalformedFrame}. */
  push(chunk: Buffer): ResponseFrame[] {
    if (chunk.length === 0) {
      return []
    }
    if (this.buffered === 0 && this.header === null && chunk[0] !== RESPONSE_MAGIC) {
      throw new MalformedFrame(`response magic 0x${hex8(chunk[0] ?? 0)}, expected 0xc8`)
    }
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const frames: ResponseFrame[] = []
    for (;;) {
      if (this.header === null) {
        if (this.buffered < HEADER_LENGTH) {
          break
        }
        this.header = this.readHeader(this.take(HEADER_LENGTH))
      }
      if (this.buffered < this.header.bodyLength) {
        break
      }
      const { opcode, status, opaque, bodyLength } = this.header
      this.header = null
      frames.push({ opcode, status, opaque, body: this.take(bodyLength) })
      if (this.buffered > 0 && this.peek() !== RESPONSE_MAGIC) {
        throw new MalformedFrame(`response magic 0x${hex8(this.peek())}, expected 0xc8`)
      }
    }
    return frames
  }

  private readHeader(header: Buffer): { opcode: number; status: number; opaque: number; bodyLength: number } {
    const magic = header.readUInt8(0)
    if (magic !== RESPONSE_MAGIC) {
      throw new MalformedFrame(`response magic 0x${hex8(magic)}, expected 0xc8`)
    }
    const version = header.readUInt8(1)
    if (version !== PROTOCOL_VERSION) {
      throw new MalformedFrame(`response version ${version}, expected ${PROTOCOL_VERSION}`)
    }
    const bodyLength = header.readUInt32BE(12)
    if (bodyLength > this.maxBody) {
      throw new MalformedFrame(`response body of ${bodyLength} bytes exceeds the bound of ${this.maxBody}`)
    }
    return {
      opcode: header.readUInt8(2),
      // Byte 3, flags, is 0 in a response and carries nothing; byte 6..8 is reserved.
      status: header.readUInt16BE(4),
      opaque: header.readUInt32BE(8),
      bodyLength,
    }
  }

  private peek(): number {
    return this.chunks[0]?.[0] ?? 0
  }

  /** The next `length` buffered bytes; the caller guarantees they are buffered. */
  private take(length: number): Buffer {
    if (length === 0) {
      return Buffer.alloc(0)
    }
    const first = this.chunks[0]
    if (first === undefined) {
      throw new Error('frame decoder: take past the buffered bytes')
    }
    let taken: Buffer
    if (first.length >= length) {
      taken = first.subarray(0, length)
      if (first.length === length) {
        this.chunks.shift()
      } else {
        this.chunks[0] = first.subarray(length)
      }
    } else {
      const parts: Buffer[] = []
      let needed = length
      while (needed > 0) {
        const chunk = this.chunks[0]
        if (chunk === undefined) {
          throw new Error('frame decoder: take past the buffered bytes')
        }
        if (chunk.length <= needed) {
          parts.push(chunk)
          this.chunks.shift()
          needed -= chunk.length
        } else {
          parts.push(chunk.subarray(0, needed))
          this.chunks[0] = chunk.subarray(needed)
          needed = 0
        }
      }
      taken = Buffer.concat(parts, length)
    }
    this.buffered -= length
    return taken
  }
}

function hex8(byte: number): string {
  return byte.toString(16).padStart(2, '0')
}

/** Reads a body field by field, each checked against the bytes left. */
export class BodyReader {
  private at = 0

  /** `what` names the body in error messages, e.g. `GET response`. */
  constructor(
    private readonly body: Buffer,
    private readonly what: string,
  ) {}

  private need(length: number, field: string): number {
    if (this.body.length - this.at < length) {
      throw new MalformedFrame(
        `${this.what}: ${field} needs ${length} bytes, ${this.body.length - this.at} left of ${this.body.length}`,
      )
    }
    const at = this.at
    this.at += length
    return at
  }

  u8(field: string): number {
    return this.body.readUInt8(this.need(1, field))
  }

  u16(field: string): number {
    return this.body.readUInt16BE(this.need(2, field))
  }

  u32(field: string): number {
    return this.body.readUInt32BE(this.need(4, field))
  }

  u64(field: string): bigint {
    return this.body.readBigUInt64BE(this.need(8, field))
  }

  /** A u64 that must fit a JavaScript number exactly (a count, Unix milliseconds). */
  safeU64(field: string): number {
    const value = this.u64(field)
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new MalformedFrame(`${this.what}: ${field} ${value} is out of range`)
    }
    return Number(value)
  }

  /** A u16-length-prefixed string's bytes (a view into the body). */
  string(field: string): Buffer {
    const length = this.u16(`${field} length`)
    const at = this.need(length, field)
    return this.body.subarray(at, at + length)
  }

  /** Every byte left. */
  rest(): Buffer {
    const rest = this.body.subarray(this.at)
    this.at = this.body.length
    return rest
  }

  /** Fails if bytes are left over. */
  finish(): void {
    if (this.at !== this.body.length) {
      throw new MalformedFrame(`${this.what}: ${this.body.length - this.at} bytes left over`)
    }
  }
}

/** HELLO's OK body (§6.1). */
export function decodeHello(body: Buffer): HelloInfo {
  const reader = new BodyReader(body, 'HELLO response')
  const version = reader.u8('version')
  reader.u8('reserved')
  const shardCount = reader.u16('shard_count')
  const shard = reader.u16('shard')
  const hash = reader.u8('hash')
  reader.u8('reserved')
  const bits = reader.u64('features')
  const bit = (n: number): boolean => ((bits >> BigInt(n)) & 1n) === 1n
  const info: HelloInfo = {
    version,
    shardCount,
    shard,
    hash,
    features: {
      bits,
      fencedSet: bit(FeatureBit.FENCED_SET),
      shardAware: bit(FeatureBit.SHARD_AWARE),
      staleWhileRevalidate: bit(FeatureBit.STALE_WHILE_REVALIDATE),
      leases: bit(FeatureBit.LEASES),
      authentication: bit(FeatureBit.AUTHENTICATION),
    },
    maxFrame: reader.u32('max_frame'),
    maxKeyLength: reader.u32('max_key_length'),
    maxValueLength: reader.u32('max_value_length'),
    maxTagLength: reader.u32('max_tag_length'),
    maxTags: reader.u32('max_tags'),
    maxKeysPerGetm: reader.u32('max_keys_per_getm'),
    maxTtl: reader.u32('max_ttl'),
    serverVersion: reader.string('server_version').toString('utf8'),
  }
  reader.finish()
  if (shardCount > 0 && shard >= shardCount) {
    throw new MalformedFrame(`HELLO response: shard ${shard} of ${shardCount}`)
  }
  return info
}

/** An entry as a HIT or STALE body carries it. */
export interface WireEntry {
  readonly cas: bigint
  readonly clientFlags: number
  readonly tags: Buffer[]
  readonly value: Buffer
}

/** One key's answer in a GET or GETM response (§6.3, §6.4). */
export interface WireLookup {
  readonly status: typeof Status.HIT | typeof Status.STALE | typeof Status.MISS | typeof Status.HOT_MISS
  /** GETM: the key's position in the request; GET: `null`. */
  readonly keyIndex: number | null
  readonly fence: bigint
  /** With LEASE: the token granted, `0n` for none; without: `null`. */
  readonly lease: bigint | null
  /** HIT and STALE: the entry; MISS and HOT_MISS: `null`. */
  readonly entry: WireEntry | null
}

/** Whether a status is a lookup's: HIT, STALE, MISS or HOT_MISS. */
export function isLookupStatus(status: number): status is WireLookup['status'] {
  return status === Status.HIT || status === Status.STALE || status === Status.MISS || status === Status.HOT_MISS
}

/**
 * A GET or GETM lookup body, read as the request's flags shape it: GETM
 * bodies start with `key_index`, and a request with LEASE gets a `lease`
 * field that the same status lacks without it (§6.3).
 */
export function decodeLookup(frame: ResponseFrame, leaseRequested: boolean): WireLookup {
  const status = frame.status
  if (!isLookupStatus(status)) {
    throw new MalformedFrame(`status ${statusName(status)} is not a lookup's`)
  }
  const getm = frame.opcode === Opcode.GETM
  const reader = new BodyReader(frame.body, `${getm ? 'GETM' : 'GET'} ${statusName(status)} response`)
  const keyIndex = getm ? reader.u16('key_index') : null
  const fence = reader.u64('fence')
  const lease = leaseRequested ? reader.u64('lease') : null
  if (status === Status.MISS || status === Status.HOT_MISS) {
    reader.finish()
    return { status, keyIndex, fence, lease, entry: null }
  }
  const cas = reader.u64('cas')
  const clientFlags = reader.u32('client_flags')
  const tagCount = reader.u16('tag_count')
  const tags: Buffer[] = []
  for (let n = 0; n < tagCount; n++) {
    tags.push(reader.string('tag'))
  }
  const value = reader.rest()
  return { status, keyIndex, fence, lease, entry: { cas, clientFlags, tags, value } }
}

/** The `key_index` of a GETM lookup frame, or `null` if it is not one. */
export function peekKeyIndex(frame: ResponseFrame): number | null {
  if (frame.opcode !== Opcode.GETM || !isLookupStatus(frame.status) || frame.body.length < 2) {
    return null
  }
  return frame.body.readUInt16BE(0)
}

/** A body that is one u64: STORED's `cas`, INVALIDATE_TAGS's and FLUSH_ALL's `seq`. */
export function decodeU64(body: Buffer, what: string, field: string): bigint {
  const reader = new BodyReader(body, what)
  const value = reader.u64(field)
  reader.finish()
  return value
}

/** A body that must be empty. */
export function decodeEmpty(body: Buffer, what: string): void {
  new BodyReader(body, what).finish()
}

/** One tag's status in a TAG_STATUS answer (§6.11); times in Unix milliseconds, 0 for none. */
export interface WireTagState {
  readonly entries: number
  readonly hardSeq: bigint
  readonly hardAt: number
  readonly softSeq: bigint
  readonly softAt: number
  readonly softUntil: number
}

/** TAG_STATUS's OK body (§6.11). */
export interface WireTagStatus {
  readonly seq: bigint
  readonly now: number
  readonly forgottenSeq: bigint
  readonly forgottenAt: number
  readonly statuses: WireTagState[]
}

/** TAG_STATUS's OK body. */
export function decodeTagStatus(body: Buffer): WireTagStatus {
  const reader = new BodyReader(body, 'TAG_STATUS response')
  const seq = reader.u64('seq')
  const now = reader.safeU64('now')
  const forgottenSeq = reader.u64('forgotten_seq')
  const forgottenAt = reader.safeU64('forgotten_at')
  const count = reader.u16('tag_count')
  const statuses: WireTagState[] = []
  for (let n = 0; n < count; n++) {
    statuses.push({
      entries: reader.safeU64('entries'),
      hardSeq: reader.u64('hard_seq'),
      hardAt: reader.safeU64('hard_at'),
      softSeq: reader.u64('soft_seq'),
      softAt: reader.safeU64('soft_at'),
      softUntil: reader.safeU64('soft_until'),
    })
  }
  reader.finish()
  return { seq, now, forgottenSeq, forgottenAt, statuses }
}

/** STATS's OK body (§6.10): lines `name value`, in the server's order. */
export function decodeStats(body: Buffer): Map<string, string> {
  const stats = new Map<string, string>()
  for (const line of body.toString('utf8').split('\n')) {
    if (line === '') {
      continue
    }
    const space = line.indexOf(' ')
    if (space === -1) {
      stats.set(line, '')
    } else {
      stats.set(line.slice(0, space), line.slice(space + 1))
    }
  }
  return stats
}
