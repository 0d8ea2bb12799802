// Key placement is protocol.md §10, the same function as the Rust client's:
// the shared fixture (client/tests/fixtures/placement.txt, generated from the
// Rust client) lists the owner of key:0 .. key:9999 over three servers, and
// this client must place every one of them there.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

import { Client } from '../dist/index.js'
import { KeyHash, fnv1a64, mix64 } from '../dist/placement.js'
import { REPO_DIR } from './support/daemon.js'

const FIXTURE = join(REPO_DIR, 'client/tests/fixtures/placement.txt')
const SERVERS = ['10.0.0.1:11311', '10.0.0.2:11311', '10.0.0.3:11311']

const MASK = (1n << 64n) - 1n

/** FNV-1a 64 as protocol.md §9 writes it, in bigint. */
function referenceFnv(bytes: Uint8Array): bigint {
  let hash = 0xcbf29ce484222325n
  for (const byte of bytes) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & MASK
  }
  return hash
}

/** mix64 as protocol.md §10 writes it, in bigint. */
function referenceMix(value: bigint): bigint {
  let x = (value + 0x9e3779b97f4a7c15n) & MASK
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK
  return x ^ (x >> 31n)
}

test('the client places 10,000 keys over three servers exactly as the shared fixture says', () => {
  // Nothing connects: placement needs no server.
  const client = new Client({ servers: SERVERS })
  const lines = readFileSync(FIXTURE, 'utf8').split('\n')
  assert.equal(lines.find((line) => line.startsWith('# servers: ')), `# servers: ${SERVERS.join(' ')}`)
  const entries = lines.filter((line) => line !== '' && !line.startsWith('#'))
  assert.equal(entries.length, 10_000)
  const shares = new Map<string, number>()
  entries.forEach((line, n) => {
    const [key, owner] = line.split(' ')
    assert.equal(key, `key:${n}`)
    assert.equal(client.serverFor(`key:${n}`), owner, `key:${n}`)
    shares.set(owner ?? '', (shares.get(owner ?? '') ?? 0) + 1)
  })
  assert.deepEqual([...shares.keys()].sort(), SERVERS, 'every server owns keys')
  // The order of configuration does not matter.
  const reversed = new Client({ servers: [...SERVERS].reverse() })
  for (let n = 0; n < 1000; n++) {
    assert.equal(reversed.serverFor(`key:${n}`), client.serverFor(`key:${n}`))
  }
})

test('the test vectors of protocol.md §10 hold', () => {
  const spec = readFileSync(join(REPO_DIR, 'protocol.md'), 'utf8')
  const section = spec.slice(spec.indexOf('## 10. Key placement'), spec.indexOf('## 11.'))
  const cells = (line: string): string[] =>
    line
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim().replace(/`/g, ''))
  const serverRows = section.split('\n').filter((line) => line.startsWith('| `10.0.0.')).map(cells)
  assert.equal(serverRows.length, 3)
  const seeds = new Map<string, bigint>()
  for (const [name, hash, seed] of serverRows) {
    const bytes = Buffer.from(name ?? '')
    assert.equal(fnv1a64(bytes), BigInt(hash ?? ''), `fnv1a64(${name})`)
    assert.equal(mix64(fnv1a64(bytes)), BigInt(seed ?? ''), `seed(${name})`)
    seeds.set(name ?? '', BigInt(seed ?? ''))
  }
  const keyRows = section.split('\n').filter((line) => line.startsWith('| `key:')).map(cells)
  assert.equal(keyRows.length, 3)
  const client = new Client({ servers: SERVERS })
  for (const [key, hash, ...rest] of keyRows) {
    const owner = rest[3]
    const keyHash = fnv1a64(Buffer.from(key ?? ''))
    assert.equal(keyHash, BigInt(hash ?? ''))
    SERVERS.forEach((server, n) => {
      assert.equal(mix64(keyHash ^ (seeds.get(server) ?? 0n)), BigInt(rest[n] ?? ''), `score of ${key} on ${server}`)
    })
    assert.equal(client.serverFor(key ?? ''), owner)
  }
})

test('the 32-bit halves compute exactly what the bigint formulas of the spec do', () => {
  assert.equal(fnv1a64(Buffer.from('')), 0xcbf29ce484222325n)
  assert.equal(fnv1a64(Buffer.from('a')), 0xaf63dc4c8601ec8cn)
  assert.equal(fnv1a64(Buffer.from('foobar')), 0x85944171f73967e8n)
  let state = 1n
  for (let n = 0; n < 5000; n++) {
    state = referenceMix(state + BigInt(n))
    const bytes = Buffer.alloc(n % 40)
    for (let at = 0; at < bytes.length; at++) {
      bytes[at] = Number((state >> BigInt((at % 8) * 8)) & 0xffn)
    }
    const hash = referenceFnv(bytes)
    assert.equal(fnv1a64(bytes), hash)
    assert.equal(mix64(state), referenceMix(state))
    const shards = 1 + (n % 64)
    assert.equal(KeyHash.of(bytes).shard(shards), Number(hash % BigInt(shards)))
  }
  assert.equal(mix64(MASK), referenceMix(MASK))
  assert.equal(mix64(0n), referenceMix(0n))
})
