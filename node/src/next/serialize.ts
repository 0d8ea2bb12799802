/**
 * A cache entry's bytes: a JSON record whose Buffers, byte arrays and Maps
 * (an ISR page's RSC payload and segments, a `'use cache'` value) are kept
 * as themselves, the bytes appended raw after the JSON instead of inflated
 * into it.
 *
 * Layout: the magic `TCN`, a version byte (1), the JSON's length (u32,
 * big-endian) and the JSON, then each blob as its length (u32) and bytes,
 * in the order the JSON refers to them by index.
 *
 * @module
 */

const MAGIC = Buffer.from('TCN\x01', 'latin1')
/** The key of a JSON object standing for the blob at its index. */
const BLOB = '\u0000blob'
/** The key of a JSON object standing for a Map, its entries as pairs. */
const MAP = '\u0000map'

/** `value` as bytes; Buffers and `Uint8Array`s come back as Buffers, Maps as Maps. */
export function encodeRecord(value: unknown): Buffer {
  const blobs: Buffer[] = []
  const json = JSON.stringify(value, function (this: Record<string, unknown>, key: string, replaced: unknown) {
    // `replaced` is after `toJSON` (a Buffer's is an array of numbers): look at the original.
    const original = this[key]
    if (original instanceof Uint8Array) {
      blobs.push(Buffer.from(original.buffer, original.byteOffset, original.byteLength))
      return { [BLOB]: blobs.length - 1 }
    }
    if (original instanceof Map) {
      return { [MAP]: [...original.entries()] }
    }
    return replaced
  })
  const text = Buffer.from(json ?? 'null', 'utf8')
  const parts: Buffer[] = [MAGIC, u32(text.length), text]
  for (const blob of blobs) {
    parts.push(u32(blob.length), blob)
  }
  return Buffer.concat(parts)
}

/** The value {@link encodeRecord} encoded, or `undefined` if `bytes` are not such a record. */
export function decodeRecord(bytes: Buffer): unknown {
  if (bytes.length < MAGIC.length + 4 || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    return undefined
  }
  let at = MAGIC.length
  const jsonLength = bytes.readUInt32BE(at)
  at += 4
  if (at + jsonLength > bytes.length) {
    return undefined
  }
  const json = bytes.toString('utf8', at, at + jsonLength)
  at += jsonLength
  const blobs: Buffer[] = []
  while (at < bytes.length) {
    if (at + 4 > bytes.length) {
      return undefined
    }
    const length = bytes.readUInt32BE(at)
    at += 4
    if (at + length > bytes.length) {
      return undefined
    }
    blobs.push(bytes.subarray(at, at + length))
    at += length
  }
  let broken = false
  const value: unknown = JSON.parse(json, (_key, parsed: unknown) => {
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const record = parsed as Record<string, unknown>
      const index = record[BLOB]
      if (typeof index === 'number') {
        const blob = blobs[index]
        if (blob === undefined) {
          broken = true
        }
        return blob
      }
      const entries = record[MAP]
      if (Array.isArray(entries)) {
        return new Map(entries as [unknown, unknown][])
      }
    }
    return parsed
  })
  return broken ? undefined : value
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}
