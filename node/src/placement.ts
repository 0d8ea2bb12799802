/**
 * Which server of a cluster owns a key, and which shard of that server:
 * protocol.md §10 and §9, computed exactly as every other client computes
 * them (`client/tests/fixtures/placement.txt` pins 10,000 keys).
 *
 * Rendezvous hashing: each server scores the key, the highest score owns
 * it. A server's name is its `host:port` string exactly as given, so every
 * client configured with the same names places keys the same way, in any
 * order of configuration.
 *
 * The hashes are 64-bit; they are computed here on pairs of 32-bit halves,
 * because `bigint` arithmetic on every request would cost more than the
 * request's encoding. {@link fnv1a64} and {@link mix64} are the `bigint`
 * forms, for tests and for anyone checking the spec.
 *
 * @module
 */

/** A 64-bit value as its high and low 32-bit halves, each in 0..2^32. */
interface U64Parts {
  hi: number
  lo: number
}

const FNV_OFFSET_HI = 0xcbf29ce4
const FNV_OFFSET_LO = 0x84222325
// The FNV prime is 2^40 + 0x1b3.
const FNV_PRIME_LOW_BITS = 0x1b3
const TWO_32 = 0x1_0000_0000

/** FNV-1a 64 of `bytes` (protocol.md §9), as halves. */
function fnvParts(bytes: Uint8Array): U64Parts {
  let hi = FNV_OFFSET_HI
  let lo = FNV_OFFSET_LO
  for (const byte of bytes) {
    lo = (lo ^ byte) >>> 0
    // h * (2^40 + 0x1b3) mod 2^64. Every intermediate is an integer below
    // 2^53, so exact as a double; `>>> 0` reduces modulo 2^32.
    const low = lo * FNV_PRIME_LOW_BITS
    const carry = Math.floor(low / TWO_32)
    hi = (hi * FNV_PRIME_LOW_BITS + carry + ((lo << 8) >>> 0)) >>> 0
    lo = low >>> 0
  }
  return { hi, lo }
}

/** The high 32 bits of the 64-bit product of two 32-bit values. */
function mulHigh32(a: number, b: number): number {
  const a1 = a >>> 16
  const a0 = a & 0xffff
  const b1 = b >>> 16
  const b0 = b & 0xffff
  const middle = a1 * b0 + a0 * b1 + ((a0 * b0) >>> 16)
  return (a1 * b1 + Math.floor(middle / 0x1_0000)) >>> 0
}

/** `a * b mod 2^64` on halves. */
function mulParts(aHi: number, aLo: number, bHi: number, bLo: number): U64Parts {
  const lo = Math.imul(aLo, bLo) >>> 0
  const hi = (mulHigh32(aLo, bLo) + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0
  return { hi, lo }
}

/** `x ^ (x >>> shift)` for 0 < shift < 32, on halves. */
function xorShift(x: U64Parts, shift: number): U64Parts {
  const shiftedLo = ((x.lo >>> shift) | (x.hi << (32 - shift))) >>> 0
  const shiftedHi = x.hi >>> shift
  return { hi: (x.hi ^ shiftedHi) >>> 0, lo: (x.lo ^ shiftedLo) >>> 0 }
}

/** splitmix64's finaliser (protocol.md §10), on halves. */
function mixParts(hi: number, lo: number): U64Parts {
  // x += 0x9e3779b97f4a7c15
  const sumLo = lo + 0x7f4a7c15
  let x: U64Parts = { hi: (hi + 0x9e3779b9 + (sumLo >= TWO_32 ? 1 : 0)) >>> 0, lo: sumLo >>> 0 }
  x = xorShift(x, 30)
  x = mulParts(x.hi, x.lo, 0xbf58476d, 0x1ce4e5b9)
  x = xorShift(x, 27)
  x = mulParts(x.hi, x.lo, 0x94d049bb, 0x133111eb)
  return xorShift(x, 31)
}

/** FNV-1a 64 of `bytes` (protocol.md §9), the hash of keys for placement and shards. */
export function fnv1a64(bytes: Uint8Array): bigint {
  const { hi, lo } = fnvParts(bytes)
  return (BigInt(hi) << 32n) | BigInt(lo)
}

/** splitmix64's finaliser (protocol.md §10). */
export function mix64(x: bigint): bigint {
  const parts = mixParts(Number((x >> 32n) & 0xffff_ffffn), Number(x & 0xffff_ffffn))
  return (BigInt(parts.hi) << 32n) | BigInt(parts.lo)
}

/** A key's hash, computed once per request and used for both the server and the shard. */
export class KeyHash {
  private constructor(
    readonly hi: number,
    readonly lo: number,
  ) {}

  /** The FNV-1a 64 hash of `key`'s bytes. */
  static of(key: Uint8Array): KeyHash {
    const { hi, lo } = fnvParts(key)
    return new KeyHash(hi, lo)
  }

  /** The shard that owns the key on a server with `shardCount` shards: `hash mod shardCount` (§9). */
  shard(shardCount: number): number {
    // (hi * 2^32 + lo) mod n, with every product below 2^53 for n < 2^16.
    const n = shardCount
    return (((this.hi % n) * (TWO_32 % n)) % n + (this.lo % n)) % n
  }
}

/** The placement of keys over a fixed list of servers (protocol.md §10). */
export class Placement {
  /** Per server, in configuration order: mix64(fnv1a64(name)) as halves. */
  private readonly seeds: U64Parts[]

  /** Placement over servers with these names; the caller guarantees at least one. */
  constructor(names: readonly string[]) {
    this.seeds = names.map((name) => {
      const hash = fnvParts(Buffer.from(name, 'utf8'))
      return mixParts(hash.hi, hash.lo)
    })
  }

  /** The index of the server that owns a key with hash `hash`. */
  owner(hash: KeyHash): number {
    return this.best(hash, () => true) ?? 0
  }

  /**
   * The highest-scoring server for which `eligible` holds, if any. Scores
   * compare as unsigned 64-bit integers; on a tie (two names with the same
   * FNV-1a hash) the server given later wins, as protocol.md §10 says.
   */
  best(hash: KeyHash, eligible: (index: number) => boolean): number | null {
    if (this.seeds.length === 1) {
      return eligible(0) ? 0 : null
    }
    let best: number | null = null
    let bestHi = 0
    let bestLo = 0
    this.seeds.forEach((seed, index) => {
      if (!eligible(index)) {
        return
      }
      const score = mixParts((hash.hi ^ seed.hi) >>> 0, (hash.lo ^ seed.lo) >>> 0)
      if (best === null || score.hi > bestHi || (score.hi === bestHi && score.lo >= bestLo)) {
        best = index
        bestHi = score.hi
        bestLo = score.lo
      }
    })
    return best
  }
}
