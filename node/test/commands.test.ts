// Every command of the client against the real daemon.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Client, InvalidArgumentError, ServerError, type Item } from '../dist/index.js'
import { BOUND, Daemon } from './support/daemon.js'

let daemon: Daemon
let cache: Client

before(async () => {
  daemon = await Daemon.start()
  cache = new Client({ servers: [daemon.address] })
})

after(async () => {
  await cache.close()
  await daemon.stop()
})

function text(item: Item | null): string | null {
  return item === null ? null : item.value.toString('utf8')
}

test('the issue example: set with tags and a TTL, get, hard invalidation, miss', { timeout: BOUND }, async () => {
  const html = '<h1>Post 3</h1>'
  const stored = await cache.set('page:/posts/3', html, { tags: ['post:3', 'posts'], ttl: 3600 })
  assert.equal(stored.status, 'STORED')
  assert.ok(stored.stored && stored.cas > 0n)
  const hit = await cache.get('page:/posts/3')
  assert.ok(hit !== null)
  assert.ok(Buffer.isBuffer(hit.value))
  assert.equal(hit.value.toString(), html)
  assert.equal(hit.cas, stored.cas)
  assert.equal(hit.stale, false)
  assert.deepEqual(hit.tags, [], 'tags only when asked')
  const [seq] = await cache.invalidateTags(['post:3'])
  assert.ok(typeof seq === 'bigint' && seq > hit.fence, 'the invalidation is numbered after the read')
  assert.equal(await cache.get('page:/posts/3'), null)
})

test('get with tags returns them sorted, each once; bytes keys and values round-trip', { timeout: BOUND }, async () => {
  await cache.set('tagged', 'v', { tags: ['zeta', 'alpha', 'zeta', 'mid'] })
  const hit = await cache.get('tagged', { withTags: true })
  assert.deepEqual(hit?.tags, ['alpha', 'mid', 'zeta'])
  const key = Uint8Array.from([0, 1, 2, 255])
  const value = Buffer.from([9, 8, 7, 0, 6])
  await cache.set(key, value, { clientFlags: 0xdeadbeef })
  const found = await cache.get(Buffer.from(key))
  assert.deepEqual(found?.value, value)
  assert.equal(found?.clientFlags, 0xdeadbeef)
  await cache.set('empty', '')
  assert.equal(text(await cache.get('empty')), '')
})

test('set modes: add, replace, cas', { timeout: BOUND }, async () => {
  await cache.delete('mode')
  assert.equal((await cache.set('mode', 'r', { mode: 'replace' })).status, 'NOT_STORED')
  const added = await cache.set('mode', 'a', { mode: 'add' })
  assert.equal(added.status, 'STORED')
  assert.equal((await cache.set('mode', 'b', { mode: 'add' })).status, 'NOT_STORED')
  assert.equal((await cache.set('mode', 'c', { mode: 'replace' })).status, 'STORED')
  const current = await cache.get('mode')
  assert.ok(current !== null)
  assert.equal((await cache.set('mode', 'x', { cas: current.cas + 100n })).status, 'EXISTS')
  const swapped = await cache.set('mode', 'd', { cas: current.cas })
  assert.equal(swapped.status, 'STORED')
  assert.equal(text(await cache.get('mode')), 'd')
  await cache.delete('mode')
  assert.equal((await cache.set('mode', 'e', { mode: 'cas', cas: current.cas })).status, 'NOT_FOUND')
  await assert.rejects(cache.set('mode', 'f', { mode: 'cas' }), InvalidArgumentError)
})

test('a fenced set is refused after an invalidation of its tags, stored otherwise', { timeout: BOUND }, async () => {
  const miss = await cache.lookup('fenced')
  assert.equal(miss.status, 'MISS')
  const storedBefore = await cache.set('fenced', 'v1', { tags: ['fence-tag'], fence: miss.fence })
  assert.equal(storedBefore.status, 'STORED')
  const read = await cache.lookup('fenced')
  await cache.invalidateTags(['fence-tag'])
  const refused = await cache.set('fenced', 'v2', { tags: ['fence-tag'], fence: read.fence })
  assert.deepEqual(refused, { status: 'FENCED', stored: false, cas: null })
  assert.equal(await cache.get('fenced'), null)
})

test('delete and touch say whether a live entry was there', { timeout: BOUND }, async () => {
  await cache.set('gone', 'v')
  assert.equal(await cache.delete('gone'), true)
  assert.equal(await cache.delete('gone'), false)
  assert.equal(await cache.touch('gone', 10), false)
  await cache.set('touched', 'v', { ttl: 1 })
  assert.equal(await cache.touch('touched', 0), true)
})

test('getMany and lookupMany answer in order, misses included', { timeout: BOUND }, async () => {
  await cache.set('many:1', 'one')
  await cache.set('many:3', 'three', { tags: ['many'] })
  const keys = ['many:1', 'many:2', 'many:3', 'many:4']
  const items = await cache.getMany(keys, { withTags: true })
  assert.deepEqual(items.map(text), ['one', null, 'three', null])
  assert.deepEqual(items[2]?.tags, ['many'])
  const lookups = await cache.lookupMany(keys)
  assert.deepEqual(
    lookups.map((lookup) => lookup.status),
    ['HIT', 'MISS', 'HIT', 'MISS'],
  )
  assert.ok(lookups.every((lookup) => lookup.fence > 0n))
  assert.deepEqual(await cache.getMany([]), [])
  // The last key a hit, and no hit at all: a quiet GETM completes either way.
  assert.deepEqual((await cache.getMany(['many:2', 'many:3'])).map(text), [null, 'three'])
  assert.deepEqual((await cache.getMany(['many:2', 'many:4'])).map(text), [null, null])
})

test('getMany splits at max_keys_per_getm and keeps the order', { timeout: BOUND }, async () => {
  const keys = Array.from({ length: 2500 }, (_, n) => `split:${n}`)
  await Promise.all(keys.filter((_, n) => n % 3 === 0).map((key) => cache.set(key, key)))
  const items = await cache.getMany(keys)
  items.forEach((item, n) => assert.equal(text(item), n % 3 === 0 ? `split:${n}` : null))
})

test('flushAll removes every entry; the soft one keeps them stale', { timeout: BOUND }, async () => {
  await cache.set('flush:a', 'a')
  const [hard] = await cache.flushAll()
  assert.ok(typeof hard === 'bigint')
  assert.equal(await cache.get('flush:a'), null)
  await cache.set('flush:b', 'b')
  const [soft] = await cache.flushAll({ soft: true, expire: 60 })
  assert.ok(soft !== undefined && hard !== undefined && soft > hard)
  assert.equal(await cache.get('flush:b'), null, 'stale is a miss to a plain read')
  const stale = await cache.get('flush:b', { allowStale: true })
  assert.equal(text(stale), 'b')
  assert.equal(stale?.stale, true)
})

test('stats are the server counters; ping answers', { timeout: BOUND }, async () => {
  await cache.ping()
  const [stats] = await cache.stats()
  assert.ok(stats !== undefined && stats.error === null)
  assert.equal(stats.server, daemon.address)
  assert.match(stats.stats.get('version') ?? '', /\d+\.\d+/)
  assert.equal(stats.stats.get('threads'), '2')
  assert.ok(Number(stats.stats.get('get_hits')) > 0)
})

test('errors name the server and the status', { timeout: BOUND }, async () => {
  const tooLong = 'k'.repeat(251)
  await assert.rejects(cache.get(tooLong), (error: unknown) => {
    assert.ok(error instanceof ServerError)
    assert.equal(error.code, 'TAGCACHED_SERVER_ERROR')
    assert.equal(error.server, daemon.address)
    assert.equal(error.status, 0x0106)
    assert.equal(error.statusName, 'KEY_INVALID')
    assert.match(error.message, new RegExp(`^${daemon.address.replace(/\./g, '\\.')}: KEY_INVALID \\(0x0106\\)`))
    return true
  })
  await assert.rejects(cache.set('k', 'v', { tags: ['has space'] }), { statusName: 'TAG_INVALID' })
  await assert.rejects(cache.set('k', 'v', { ttl: 10 * 365 * 86_400 + 86_400 }), { statusName: 'BAD_TTL' })
  await assert.rejects(cache.set('', 'v'), { statusName: 'KEY_INVALID' })
  // The connection stays usable after each.
  await cache.set('after-errors', 'ok')
  assert.equal(text(await cache.get('after-errors')), 'ok')
})

test('arguments the wire cannot carry are refused before sending', { timeout: BOUND }, async () => {
  await assert.rejects(cache.set('k', 'v', { ttl: -1 }), InvalidArgumentError)
  await assert.rejects(cache.set('k', 'v', { ttl: 2 ** 32 }), InvalidArgumentError)
  await assert.rejects(cache.set('k', 'v', { clientFlags: 2 ** 32 }), InvalidArgumentError)
  await assert.rejects(cache.invalidateTags([]), InvalidArgumentError)
  await assert.rejects(cache.invalidateTags(['t'], { expire: 5 }), InvalidArgumentError, 'expire needs soft')
  // @ts-expect-error: get takes no lease; lookup does.
  await assert.rejects(cache.get('k', { lease: true }), /use lookup/)
  const tooBig = Buffer.alloc(3 * 1024 * 1024)
  await assert.rejects(cache.set('big', tooBig), (error: unknown) => {
    assert.ok(error instanceof InvalidArgumentError)
    assert.equal(error.server, daemon.address)
    assert.match(error.message, /max_frame/)
    return true
  })
  await assert.rejects(cache.set('big', Buffer.alloc(1024 * 1024 + 1)), { statusName: 'VALUE_TOO_LARGE' })
  assert.throws(() => new Client({ servers: [] }), InvalidArgumentError)
  assert.throws(() => new Client({ servers: ['a:1', 'a:1'] }), /given twice/)
  assert.throws(() => new Client({ servers: ['no-port'] }), /host:port/)
})
