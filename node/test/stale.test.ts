// Stale-while-revalidate against the real daemon: soft invalidation and
// stale reads, refresh leases, stale windows, request-scoped tags, TAG_STATUS.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Client, type Lookup } from '../dist/index.js'
import { BOUND, Daemon, sleep } from './support/daemon.js'

let daemon: Daemon
let cache: Client

before(async () => {
  daemon = await Daemon.start(['--lease-time', '1'])
  cache = new Client({ servers: [daemon.address] })
})

after(async () => {
  await cache.close()
  await daemon.stop()
})

test('soft invalidation: a plain read misses, a stale read gets the value marked stale', { timeout: BOUND }, async () => {
  await cache.set('page:/blog', '<ul>3 posts</ul>', { tags: ['blog'] })
  await cache.invalidateTags(['blog'], { soft: true, expire: 60 })
  assert.equal(await cache.get('page:/blog'), null)
  const stale = await cache.get('page:/blog', { allowStale: true })
  assert.equal(stale?.value.toString(), '<ul>3 posts</ul>')
  assert.equal(stale?.stale, true)
  const lookup = await cache.lookup('page:/blog', { allowStale: true })
  assert.equal(lookup.status, 'STALE')
  // A hard invalidation after it makes the entry dead at once.
  await cache.invalidateTags(['blog'])
  assert.equal(await cache.get('page:/blog', { allowStale: true }), null)
})

test('after a soft invalidation one reader gets the lease; the others the stale copy or a hot miss', { timeout: BOUND }, async () => {
  await cache.set('page:/posts', 'old', { tags: ['posts'] })
  await cache.invalidateTags(['posts'], { soft: true, expire: 60 })
  const readers = await Promise.all(
    Array.from({ length: 50 }, () => cache.lookup('page:/posts', { allowStale: true, lease: true })),
  )
  const leased = readers.filter((reader) => reader.lease !== null)
  assert.equal(leased.length, 1, 'exactly one reader refreshes')
  assert.ok(readers.every((reader) => reader.status === 'STALE' && reader.item.value.toString() === 'old'))
  const withoutStale = await cache.lookup('page:/posts', { lease: true })
  assert.equal(withoutStale.status, 'HOT_MISS', 'someone is recomputing')
  const holder = leased[0] as Lookup
  const refreshed = await cache.set('page:/posts', 'new', { tags: ['posts'], lease: holder.lease ?? 0n, fence: holder.fence })
  assert.equal(refreshed.status, 'STORED')
  const fresh = await cache.lookup('page:/posts', { allowStale: true, lease: true })
  assert.equal(fresh.status, 'HIT')
  assert.equal(fresh.item?.value.toString(), 'new')
  // The lease ended with the SET: using it again is refused.
  const again = await cache.set('page:/posts', 'newer', { lease: holder.lease ?? 0n })
  assert.equal(again.status, 'LEASE_LOST')
})

test('a missing key leases to the first reader; its SET is FENCED if a tag was invalidated meanwhile', { timeout: BOUND }, async () => {
  const first = await cache.lookup('lease:fenced', { lease: true })
  assert.equal(first.status, 'MISS')
  assert.ok(first.lease !== null && first.lease > 0n)
  const second = await cache.lookup('lease:fenced', { lease: true })
  assert.equal(second.status, 'HOT_MISS')
  assert.equal(second.lease, null)
  await cache.invalidateTags(['lease-tag'])
  const refused = await cache.set('lease:fenced', 'v', { tags: ['lease-tag'], lease: first.lease ?? 0n, fence: first.fence })
  assert.equal(refused.status, 'FENCED')
  // A holder that cannot compute gives the lease up with a CAS SET of 0.
  const retry = await cache.lookup('lease:fenced', { lease: true })
  assert.ok(retry.lease !== null)
  const givenUp = await cache.set('lease:fenced', 'x', { cas: 0n, lease: retry.lease })
  assert.equal(givenUp.status, 'NOT_FOUND')
  assert.notEqual((await cache.lookup('lease:fenced', { lease: true })).lease, null, 'the next reader gets it')
})

test('a lease not used within the lease time passes to the next reader', { timeout: BOUND }, async () => {
  const first = await cache.lookup('lease:expiring', { lease: true })
  assert.ok(first.lease !== null)
  assert.equal((await cache.lookup('lease:expiring', { lease: true })).status, 'HOT_MISS')
  await sleep(1100)
  const next = await cache.lookup('lease:expiring', { lease: true })
  assert.equal(next.status, 'MISS')
  assert.ok(next.lease !== null && next.lease !== first.lease)
})

test('an entry stored with staleAfter turns stale on its own', { timeout: BOUND }, async () => {
  await cache.set('stale-after', 'v', { staleAfter: 1, ttl: 60 })
  assert.equal((await cache.get('stale-after'))?.stale, false)
  await sleep(1100)
  assert.equal(await cache.get('stale-after'), null)
  assert.equal((await cache.get('stale-after', { allowStale: true }))?.stale, true)
})

test('request-scoped tags: invalidating one makes the read miss, or stale, without touching the entry', { timeout: BOUND }, async () => {
  await cache.set('page:/shop', 'shop', { tags: ['product:1'] })
  const requestTags = ['_N_T_/shop', '_N_T_/layout']
  assert.equal((await cache.get('page:/shop', { requestTags }))?.value.toString(), 'shop')
  await cache.invalidateTags(['_N_T_/layout'], { soft: true, expire: 60 })
  assert.equal(await cache.get('page:/shop', { requestTags }), null)
  assert.equal((await cache.get('page:/shop', { requestTags, allowStale: true }))?.stale, true)
  assert.equal((await cache.get('page:/shop'))?.stale, false, 'a read without them finds it fresh')
  await cache.invalidateTags(['_N_T_/shop'])
  assert.equal(await cache.get('page:/shop', { requestTags, allowStale: true }), null)
  const many = await cache.getMany(['page:/shop', 'page:/none'], { requestTags: ['_N_T_/other'] })
  assert.equal(many[0]?.value.toString(), 'shop')
  const manyTagged = await cache.lookupMany(['page:/shop'], { requestTags })
  assert.equal(manyTagged[0]?.status, 'MISS')
})

test('tag status: entries, the latest hard and soft invalidations, in Unix milliseconds', { timeout: BOUND }, async () => {
  await cache.set('status:1', 'a', { tags: ['st:a', 'st:b'] })
  await cache.set('status:2', 'b', { tags: ['st:a'] })
  const [counted] = await cache.tagStatus(['st:a'])
  assert.equal(counted?.tags[0]?.entries, 2)
  const before = Date.now()
  const [hardSeq] = await cache.invalidateTags(['st:b'])
  const [softSeq] = await cache.invalidateTags(['st:a'], { soft: true, expire: 30 })
  const [report] = await cache.tagStatus(['st:a', 'st:b', 'st:never'])
  assert.ok(report !== undefined)
  assert.equal(report.server, daemon.address)
  const [a, b, never] = report.tags
  assert.equal(a?.tag, 'st:a')
  // status:1 died with st:b: held until a read or the sweep removes it
  // (protocol.md §6.11), so it may or may not count any more.
  assert.ok(a?.entries === 1 || a?.entries === 2, `entries ${a?.entries}`)
  assert.equal(a?.hard, null)
  assert.equal(a?.soft?.seq, softSeq)
  assert.ok((a?.soft?.at ?? 0) >= before - 1000)
  assert.equal((a?.soft?.until ?? 0) - (a?.soft?.at ?? 0), 30_000)
  assert.equal(b?.hard?.seq, hardSeq)
  assert.equal(b?.soft, null)
  assert.deepEqual(never, { tag: 'st:never', entries: 0, hard: null, soft: null, lastInvalidated: null })
  assert.equal(report.lastInvalidated, a?.soft?.at)
  assert.ok(report.seq >= (softSeq ?? 0n))
  assert.ok(Math.abs(report.now - Date.now()) < 5000)
})
