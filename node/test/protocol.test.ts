// protocol.ts against protocol.md: the worked example's bytes, the tables'
// codes, and the decoder's bounds.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

import {
  BodyReader,
  FrameDecoder,
  MalformedFrame,
  Opcode,
  SetMode,
  Status,
  decodeHello,
  decodeLookup,
  decodeTagStatus,
  encodeAuth,
  encodeGet,
  encodeGetMany,
  encodeInvalidateTags,
  encodeSet,
  type ResponseFrame,
} from '../dist/protocol.js'
import { InvalidArgumentError } from '../dist/errors.js'
import { REPO_DIR } from './support/daemon.js'

const SPEC = readFileSync(join(REPO_DIR, 'protocol.md'), 'utf8')

/** The text of the section whose heading starts with `heading`, up to the next of its level or higher. */
function section(heading: string): string {
  const start = SPEC.indexOf(`\n${heading}`)
  assert.ok(start !== -1, `protocol.md has no heading ${heading}`)
  const level = heading.split(' ')[0]?.length ?? 2
  const rest = SPEC.slice(start + 1)
  const lines = rest.split('\n')
  const end = lines.findIndex((line, n) => n > 0 && /^#+ /.test(line) && (line.split(' ')[0]?.length ?? 9) <= level)
  return lines.slice(0, end === -1 ? undefined : end).join('\n')
}

/** The bytes of each fenced hex dump in `text`: pairs of hex digits before the annotation. */
function hexDumps(text: string): Buffer[] {
  return text
    .split('```')
    .filter((_, n) => n % 2 === 1)
    .map((dump) =>
      Buffer.from(
        dump
          .split('\n')
          .flatMap((line) => (line.trimStart().split('   ')[0] ?? '').split(/\s+/))
          .filter((pair) => /^[0-9A-Fa-f]{2}$/.test(pair))
          .map((pair) => parseInt(pair, 16)),
      ),
    )
}

/** Table rows of `text` whose first cell starts with `first`, as trimmed cells without backquotes. */
function rows(text: string, first: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('| ') && line.slice(2).startsWith(first))
    .map((line) =>
      line
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim().replace(/`/g, '')),
    )
}

test('the SET example of protocol.md §11 is what encodeSet writes, and its answer decodes', () => {
  const [setBytes, storedBytes] = hexDumps(section('## 11.'))
  assert.ok(setBytes !== undefined && storedBytes !== undefined)
  const frame = encodeSet({
    mode: SetMode.SET,
    key: Buffer.from('k'),
    value: Buffer.from('v'),
    tags: [Buffer.from('t')],
    clientFlags: 0,
    ttl: 0,
    cas: 0n,
    fence: 0n,
    lease: null,
    staleAfter: null,
    quiet: false,
  })
  frame.bytes.writeUInt32BE(7, 8)
  assert.deepEqual(frame.bytes, setBytes)
  const decoder = new FrameDecoder(1024)
  const [stored] = decoder.push(storedBytes)
  assert.deepEqual(stored, { opcode: Opcode.SET, status: Status.STORED, opaque: 7, body: Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]) })
})

test('opcodes and status codes are the tables of protocol.md §3 and §4', () => {
  const opcodes = rows(section('## 3.'), '`0x')
  assert.equal(opcodes.length, 13)
  for (const [code, name] of opcodes) {
    assert.equal((Opcode as Record<string, number>)[name ?? ''], parseInt(code ?? '', 16), `opcode ${name}`)
  }
  const statuses = rows(section('## 4.'), '`0x')
  assert.equal(statuses.length, 29)
  for (const [code, name] of statuses) {
    assert.equal((Status as Record<string, number>)[name ?? ''], parseInt(code ?? '', 16), `status ${name}`)
  }
})

test('the decoder splits frames however the bytes arrive', () => {
  const frames: Buffer[] = []
  for (let n = 0; n < 5; n++) {
    const body = Buffer.alloc(n * 7, n)
    const header = Buffer.alloc(16)
    header[0] = 0xc8
    header[1] = 1
    header[2] = Opcode.GET
    header.writeUInt16BE(Status.MISS, 4)
    header.writeUInt32BE(n + 1, 8)
    header.writeUInt32BE(body.length, 12)
    frames.push(header, body)
  }
  const stream = Buffer.concat(frames)
  for (const size of [1, 2, 3, 16, 17, 1000]) {
    const decoder = new FrameDecoder(1024)
    const found: ResponseFrame[] = []
    for (let at = 0; at < stream.length; at += size) {
      found.push(...decoder.push(stream.subarray(at, at + size)))
    }
    assert.deepEqual(
      found.map((frame) => [frame.opaque, frame.body.length]),
      [0, 1, 2, 3, 4].map((n) => [n + 1, n * 7]),
      `chunks of ${size}`,
    )
  }
})

test('the decoder checks magic at once, and version and body_length before the body', () => {
  assert.throws(() => new FrameDecoder(1024).push(Buffer.from([0xc7])), MalformedFrame)
  const header = Buffer.alloc(16)
  header[0] = 0xc8
  header[1] = 2
  assert.throws(() => new FrameDecoder(1024).push(header), /version 2/)
  header[1] = 1
  header.writeUInt32BE(1025, 12)
  assert.throws(() => new FrameDecoder(1024).push(header), /exceeds the bound of 1024/)
  header.writeUInt32BE(1024, 12)
  assert.deepEqual(new FrameDecoder(1024).push(header), [], 'a whole header and no body yet is no error')
})

test('bodies are read field by field, each checked against the bytes left', () => {
  const reader = new BodyReader(Buffer.from([0, 5, 1, 2]), 'test body')
  assert.throws(() => reader.string('tag'), /tag needs 5 bytes, 2 left of 4/)
  const trailing = new BodyReader(Buffer.from([0, 0, 1]), 'test body')
  trailing.u16('n')
  assert.throws(() => trailing.finish(), /1 bytes left over/)
  assert.throws(() => decodeHello(Buffer.alloc(45)), MalformedFrame)
  assert.throws(() => decodeTagStatus(Buffer.alloc(34 + 47).fill(0).fill(1, 32, 34)), MalformedFrame)
})

test('a lookup body has a lease field only when the request asked for one', () => {
  const miss = (body: Buffer, opcode: number = Opcode.GET): ResponseFrame => ({ opcode, status: Status.MISS, opaque: 1, body })
  const fence = Buffer.alloc(8)
  fence.writeBigUInt64BE(42n)
  const lease = Buffer.alloc(8)
  lease.writeBigUInt64BE(7n)
  assert.deepEqual(decodeLookup(miss(fence), false), { status: Status.MISS, keyIndex: null, fence: 42n, lease: null, entry: null })
  assert.equal(decodeLookup(miss(Buffer.concat([fence, lease])), true).lease, 7n)
  assert.throws(() => decodeLookup(miss(Buffer.concat([fence, lease])), false), /left over/)
  assert.throws(() => decodeLookup(miss(fence), true), /lease needs 8 bytes/)
  const keyIndex = Buffer.from([0, 3])
  assert.equal(decodeLookup(miss(Buffer.concat([keyIndex, fence]), Opcode.GETM), false).keyIndex, 3)
  const hit: ResponseFrame = {
    opcode: Opcode.GET,
    status: Status.HIT,
    opaque: 1,
    body: Buffer.concat([fence, Buffer.alloc(8, 0), Buffer.from([0, 0, 0, 9, 0, 1, 0, 1, 0x74]), Buffer.from('value')]),
  }
  const decoded = decodeLookup(hit, false)
  assert.equal(decoded.entry?.clientFlags, 9)
  assert.deepEqual(decoded.entry?.tags, [Buffer.from('t')])
  assert.equal(decoded.entry?.value.toString(), 'value')
})

test('request bodies: request-scoped tags, GETM keys, a soft invalidation', () => {
  const get = encodeGet(Buffer.from('k'), 0, [Buffer.from('a')])
  assert.equal(get.flags, 0x10, 'REQUEST_TAGS')
  assert.deepEqual(get.bytes.subarray(16), Buffer.from([0, 1, 0, 1, 0x61, 0x6b]))
  const getm = encodeGetMany([Buffer.from('x'), Buffer.from('yz')], 0x01, null)
  assert.deepEqual(getm.bytes.subarray(16), Buffer.from([0, 2, 0, 1, 0x78, 0, 2, 0x79, 0x7a]))
  assert.equal(getm.bytes.readUInt32BE(12), 9)
  const soft = encodeInvalidateTags([Buffer.from('t')], 60)
  assert.equal(soft.flags, 0x40, 'SOFT')
  assert.deepEqual(soft.bytes.subarray(16), Buffer.from([0, 0, 0, 60, 0, 1, 0, 1, 0x74]))
  assert.throws(() => encodeGetMany([], 0, null), InvalidArgumentError)
  assert.throws(() => encodeGet(Buffer.from('k'), 0, [Buffer.alloc(70_000)]), InvalidArgumentError)
})

test('AUTH is the token as the body, 1 to 512 bytes (protocol.md §6.12)', () => {
  const frame = encodeAuth(Buffer.from('s3cret'))
  frame.bytes.writeUInt32BE(9, 8)
  assert.deepEqual(
    frame.bytes,
    Buffer.from([0xc7, 1, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 6, ...Buffer.from('s3cret')]),
  )
  assert.equal(encodeAuth(Buffer.alloc(512, 0x78)).bytes.length, 16 + 512)
  assert.throws(() => encodeAuth(Buffer.alloc(0)), InvalidArgumentError)
  assert.throws(() => encodeAuth(Buffer.alloc(513, 0x78)), InvalidArgumentError)
  assert.ok(section('### 6.12').includes('1..=512 bytes'))
})
