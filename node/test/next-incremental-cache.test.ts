// tagcached/next's incremental `cacheHandler` against the real daemon: pages,
// routes and fetches, stored whole and shared by instances, invalidated by
// their tags, stale as Next.js reckons staleness.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Client } from '../dist/index.js'
import { createIncrementalCache, type IncrementalCacheHandler, type IncrementalCacheValue } from '../dist/next/index.js'
import { BOUND, Daemon } from './support/daemon.js'

let daemon: Daemon
const clients: Client[] = []

before(async () => {
  daemon = await Daemon.start()
})

after(async () => {
  await Promise.all(clients.map((client) => client.close()))
  await daemon.stop()
})

/** One instance's handler, as Next.js makes it for a request. */
function instance(): IncrementalCacheHandler {
  const client = new Client({ servers: [daemon.address] })
  clients.push(client)
  const Handler = createIncrementalCache({ client })
  return new Handler({ serverDistDir: '/nonexistent/.next/server' })
}

function page(tags: string, render: string): IncrementalCacheValue {
  return {
    kind: 'APP_PAGE',
    html: `<p>${render}</p>`,
    rscData: Buffer.from([0, 1, 2, 255]),
    headers: { 'x-next-cache-tags': tags },
    postponed: undefined,
    status: 200,
    segmentData: new Map([['/_tree', Buffer.from('tree')]]),
  }
}

const PAGE = { kind: 'APP_PAGE', isFallback: false } as const
const CONTROL = { revalidate: 3600, expire: 86400 }

test('a page set by one instance is read whole by another: html, RSC bytes, segments, lifetime', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  const before = Date.now()
  await a.set('/_rc/app/$/isr', page('_N_T_/layout,_N_T_/isr,isr', 'render 1'), { cacheControl: CONTROL })
  const found = await b.get('/_rc/app/$/isr', PAGE)
  assert.ok(found !== null && found.value !== null)
  assert.equal(found.value['html'], '<p>render 1</p>')
  assert.deepEqual(found.value['rscData'], Buffer.from([0, 1, 2, 255]))
  assert.deepEqual(found.value['segmentData'], new Map([['/_tree', Buffer.from('tree')]]))
  assert.deepEqual(found.cacheControl, CONTROL)
  assert.ok(found.lastModified >= before && found.lastModified <= Date.now())
  assert.equal(await b.get('/_rc/app/$/other', PAGE), null)
})

test('a tag from the x-next-cache-tags header, hard: the page is a miss everywhere (revalidatePath, updateTag)', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  await a.set('/hard', page('_N_T_/layout,_N_T_/hard,hard-page', 'r'), { cacheControl: CONTROL })
  assert.notEqual(await b.get('/hard', PAGE), null)
  await b.revalidateTag('_N_T_/hard')
  assert.equal(await a.get('/hard', PAGE), null)
  assert.equal(await b.get('/hard', PAGE), null)
})

test("soft: the reader holding the refresh lease sees the page past its revalidate time, so Next.js serves it once and regenerates", { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  await a.set('/soft', page('_N_T_/soft,soft-page', 'r1'), { cacheControl: CONTROL })
  const stored = await a.get('/soft', PAGE)
  await a.revalidateTag(['soft-page'], { expire: 60 })
  const refresher = await b.get('/soft', PAGE)
  assert.ok(refresher !== null)
  assert.equal(refresher.value?.['html'], '<p>r1</p>')
  const age = (Date.now() - refresher.lastModified) / 1000
  assert.ok(age > CONTROL.revalidate && age < CONTROL.expire, `age ${age}: stale, not expired`)
  const other = await a.get('/soft', PAGE)
  assert.equal(other?.lastModified, stored?.lastModified, 'while another refreshes it: as stored')
  await b.set('/soft', page('_N_T_/soft,soft-page', 'r2'), { cacheControl: CONTROL })
  assert.equal((await a.get('/soft', PAGE))?.value?.['html'], '<p>r2</p>')
})

test('soft, on a page that never revalidates: a miss, since Next.js could not be told it is stale', { timeout: BOUND }, async () => {
  const a = instance()
  await a.set('/static', page('static-page', 'r'), { cacheControl: { revalidate: false, expire: undefined } })
  assert.notEqual(await a.get('/static', PAGE), null)
  await a.revalidateTag('static-page', { expire: 60 })
  assert.equal(await a.get('/static', PAGE), null)
})

test('a fetch: its tags, the request soft tags as request-scoped tags, a tag it lacks', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  const data: IncrementalCacheValue = {
    kind: 'FETCH',
    data: { headers: {}, body: 'eyJmZXRjaCI6MX0=', url: 'http://origin/', status: 200 },
    tags: ['origin'],
    revalidate: 60,
  }
  await a.set('fetch-key', data, { fetchCache: true, tags: ['origin'] })
  const softTags = ['_N_T_/layout', '_N_T_/fetched']
  const found = await b.get('fetch-key', { kind: 'FETCH', tags: ['origin'], softTags, revalidate: 60 })
  assert.deepEqual(found?.value, data)
  assert.equal(await b.get('fetch-key', { kind: 'FETCH', tags: ['origin', 'new-tag'], softTags }), null, 'stored again with the new tag')
  await b.revalidateTag('_N_T_/fetched', { expire: 60 })
  const stale = await a.get('fetch-key', { kind: 'FETCH', tags: ['origin'], softTags, revalidate: 60 })
  assert.ok(stale !== null && (Date.now() - stale.lastModified) / 1000 > 60, 'stale through the request')
  await a.revalidateTag('origin')
  assert.equal(await b.get('fetch-key', { kind: 'FETCH', tags: ['origin'], softTags: [] }), null)
})

test('the TTL is the page expire; keys carry the build id; bytes not written by the handler are a miss', { timeout: BOUND }, async () => {
  const a = instance()
  await a.set('/ttl', page('t', 'r'), { cacheControl: { revalidate: 1, expire: 300 } })
  const raw = new Client({ servers: [daemon.address] })
  clients.push(raw)
  const lookup = await raw.lookup('next:ic::/ttl')
  assert.equal(lookup.status, 'HIT', 'no BUILD_ID beside the server directory: an empty build id')
  await raw.set('next:ic::/garbage', 'not a record')
  assert.equal(await a.get('/garbage', PAGE), null)
  await raw.set('next:ic::/ttl', 'not a record')
  assert.equal(await a.get('/ttl', PAGE), null)
  a.resetRequestCache()
})
