// tagcached/next's `cacheHandlers` handler against the real daemon, one
// test per rule it keeps. Two handlers with their own clients stand for two
// instances of an app.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Client } from '../dist/index.js'
import { createCacheHandler, createIncrementalCache, type CacheEntry, type CacheHandler } from '../dist/next/index.js'
import { BOUND, Daemon, sleep } from './support/daemon.js'

let daemon: Daemon
const clients: Client[] = []

before(async () => {
  daemon = await Daemon.start(['--lease-time', '2'])
})

after(async () => {
  await Promise.all(clients.map((client) => client.close()))
  // The handlers configured from the environment share a client per
  // configuration, kept for the process: close them, so the process ends.
  const registries = (globalThis as unknown as Record<symbol, { own: Map<string, { tagcached: Client | null }> } | undefined>)[
    Symbol.for('tagcached.next.stores')
  ]
  await Promise.all([...(registries?.own.values() ?? [])].map((store) => store.tagcached?.close()))
  await daemon.stop()
})

/** A client of the test daemon, closed after the tests. */
function client(): Client {
  const made = new Client({ servers: [daemon.address] })
  clients.push(made)
  return made
}

/** A handler of its own, as one instance of an app has; `log` collects what it logs. */
function instance(log: string[] = []): CacheHandler {
  return createCacheHandler({ client: client(), log: (message) => log.push(message) })
}

function stream(text: string): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(Buffer.from(text))
      controller.close()
    },
  })
}

function entry(text: string, fields: Partial<Omit<CacheEntry, 'value'>> = {}): CacheEntry {
  return { value: stream(text), tags: [], stale: 300, timestamp: Date.now(), revalidate: 900, expire: 3600, ...fields }
}

async function text(found: CacheEntry | undefined): Promise<string | undefined> {
  if (found === undefined) {
    return undefined
  }
  return Buffer.from(await new Response(found.value).arrayBuffer()).toString()
}

test('set stores the bytes with tags, timestamp, revalidate, expire and stale; each get is a new stream', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  const timestamp = Date.now() - 5
  await a.set('k:fields', Promise.resolve(entry('<p>hello</p>', { tags: ['posts', 'post:1'], timestamp, revalidate: 60, expire: 600, stale: 30 })))
  const first = await b.get('k:fields', [])
  const second = await b.get('k:fields', [])
  assert.ok(first !== undefined && second !== undefined)
  assert.notEqual(first.value, second.value, 'a new stream each time')
  assert.equal(await text(first), '<p>hello</p>')
  assert.equal(await text(second), '<p>hello</p>')
  assert.deepEqual(
    { tags: first.tags, timestamp: first.timestamp, revalidate: first.revalidate, expire: first.expire, stale: first.stale },
    { tags: ['posts', 'post:1'], timestamp, revalidate: 60, expire: 600, stale: 30 },
  )
  // The server holds it with its tags and the TTL from `expire`.
  const stored = await client().getMany(['next:uc:k:fields'], { withTags: true })
  assert.deepEqual(stored[0]?.tags, ['post:1', 'posts'])
})

test('get waits for a set of the same key still running in this process', { timeout: BOUND }, async () => {
  const a = instance()
  let finish = (_entry: CacheEntry): void => {}
  const pending = new Promise<CacheEntry>((resolve) => {
    finish = resolve
  })
  const setting = a.set('k:pending', pending)
  const reading = a.get('k:pending', [])
  await sleep(50)
  finish(entry('rendered'))
  assert.equal(await text(await reading), 'rendered', 'the get saw the set, not a miss')
  await setting
})

test('an entry with expire 0 is not stored; a stream that fails stores nothing', { timeout: BOUND }, async () => {
  const a = instance()
  await a.set('k:dynamic', Promise.resolve(entry('dynamic', { expire: 0 })))
  assert.equal(await a.get('k:dynamic', []), undefined)
  const failing = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(Buffer.from('part'))
      controller.error(new Error('render failed'))
    },
  })
  await a.set('k:failed', Promise.resolve({ ...entry(''), value: failing }))
  assert.equal(await a.get('k:failed', []), undefined)
  await a.set('k:rejected', Promise.reject(new Error('no entry')))
  assert.equal(await a.get('k:rejected', []), undefined)
})

test('the TTL is expire, and the entry turns stale on the server after revalidate', { timeout: BOUND }, async () => {
  const a = instance()
  await a.set('k:ttl', Promise.resolve(entry('short', { revalidate: 1, expire: 2 })))
  assert.equal((await a.get('k:ttl', []))?.revalidate, 1)
  await sleep(1100)
  assert.equal((await a.get('k:ttl', []))?.revalidate, -1, 'stale after revalidate: this reader refreshes')
  await sleep(1000)
  assert.equal(await a.get('k:ttl', []), undefined, 'gone after expire')
})

test('updateTags without durations is hard: an entry with that tag is a miss on every instance', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  await a.set('k:hard', Promise.resolve(entry('v1', { tags: ['hard-tag'] })))
  assert.equal(await text(await b.get('k:hard', [])), 'v1')
  await b.updateTags(['hard-tag'])
  assert.equal(await a.get('k:hard', []), undefined)
  assert.equal(await b.get('k:hard', []), undefined)
})

test('updateTags with { expire } is soft: one reader gets revalidate -1 and refreshes, the others the entry as it was', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  await a.set('k:soft', Promise.resolve(entry('v1', { tags: ['soft-tag'], revalidate: 900 })))
  await a.updateTags(['soft-tag'], { expire: 60 })
  const refresher = await b.get('k:soft', [])
  assert.equal(refresher?.revalidate, -1, 'stale, and this instance holds the refresh lease')
  assert.equal(await text(refresher), 'v1', 'served once more')
  const other = await a.get('k:soft', [])
  assert.equal(other?.revalidate, 900, 'another instance is refreshing it: served as stored')
  assert.equal(await text(other), 'v1')
  await b.set('k:soft', Promise.resolve(entry('v2', { tags: ['soft-tag'] })))
  const fresh = await a.get('k:soft', [])
  assert.equal(await text(fresh), 'v2')
  assert.equal(fresh?.revalidate, 900)
})

test('soft tags are checked by the server as request-scoped tags; getExpiration says so with Infinity', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  assert.equal(await a.getExpiration(['_N_T_/blog']), Infinity)
  await a.refreshTags()
  await a.set('k:page', Promise.resolve(entry('blog', { tags: ['posts'] })))
  const softTags = ['_N_T_/layout', '_N_T_/blog/layout', '_N_T_/blog']
  assert.equal(await text(await b.get('k:page', softTags)), 'blog')
  await a.updateTags(['_N_T_/blog/layout'], { expire: 60 })
  assert.equal((await b.get('k:page', softTags))?.revalidate, -1, 'stale through the request')
  assert.equal((await b.get('k:page', ['_N_T_/other']))?.revalidate, 900, 'the entry itself is untouched')
  await a.updateTags(['_N_T_/blog'])
  assert.equal(await b.get('k:page', softTags), undefined, 'expired through the request')
})

test('a value rendered before an invalidation of its tag is refused, not stored after it', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  assert.equal(await a.get('k:race', []), undefined)
  // A renders from the old data; meanwhile B's action changes it and invalidates.
  await b.updateTags(['race-tag'])
  await a.set('k:race', Promise.resolve(entry('rendered from old data', { tags: ['race-tag'] })))
  assert.equal(await b.get('k:race', []), undefined, 'FENCED: the old render never lands')
  assert.equal(await a.get('k:race', []), undefined)
  await a.set('k:race', Promise.resolve(entry('rendered again', { tags: ['race-tag'] })))
  assert.equal(await text(await b.get('k:race', [])), 'rendered again')
})

test('keys past 250 bytes and tags with spaces are taken, each the same for every instance', { timeout: BOUND }, async () => {
  const a = instance()
  const b = instance()
  const key = `["build",${'"argument",'.repeat(60)}]`
  await a.set(key, Promise.resolve(entry('long', { tags: ['my tag', 'ünïcode'] })))
  assert.equal(await text(await b.get(key, [])), 'long')
  assert.equal(await b.get(`${key} `, []), undefined, 'another long key is another entry')
  await b.updateTags(['my tag'])
  assert.equal(await a.get(key, []), undefined)
})

test('one revalidateTag reaches the server once though both handlers are told', { timeout: BOUND }, async () => {
  let sent = 0
  class CountingClient extends Client {
    override invalidateTags(...args: Parameters<Client['invalidateTags']>): ReturnType<Client['invalidateTags']> {
      sent += 1
      return super.invalidateTags(...args)
    }
  }
  const shared = new CountingClient({ servers: [daemon.address] })
  clients.push(shared)
  const handler = createCacheHandler({ client: shared })
  const Incremental = createIncrementalCache({ client: shared })
  const incremental = new Incremental({})
  // As Next.js's revalidateTags does: every handler, in one tick.
  await Promise.all([handler.updateTags(['once'], { expire: 60 }), incremental.revalidateTag(['once'], { expire: 60 })])
  assert.equal(sent, 1)
  await Promise.all([handler.updateTags(['once']), incremental.revalidateTag('once', { expire: 60 })])
  assert.equal(sent, 3, 'hard and soft are different invalidations')
})

test('with tagcached unreachable every call resolves as a miss, and the outage is logged once', { timeout: BOUND }, async () => {
  const gone = await Daemon.start()
  await gone.stop()
  const log: string[] = []
  const unreachable = new Client({ servers: [gone.address], connectTimeout: 200, backoffMin: 10_000, backoffMax: 10_000 })
  clients.push(unreachable)
  const handler = createCacheHandler({ client: unreachable, log: (message) => log.push(message) })
  for (let request = 0; request < 10; request += 1) {
    assert.equal(await handler.get(`k:${request}`, ['_N_T_/x']), undefined)
    await handler.set(`k:${request}`, Promise.resolve(entry('v', { tags: ['t'] })))
    await handler.updateTags(['t'])
  }
  assert.equal(log.length, 1, log.join('\n'))
  assert.match(log[0] ?? '', /^\[tagcached\/next\] 127\.0\.0\.1:\d+ is unreachable/)
})

test('with no servers configured the handler caches nothing and says so once', { timeout: BOUND }, async () => {
  const log: string[] = []
  const saved = process.env['TAGCACHED_SERVERS']
  delete process.env['TAGCACHED_SERVERS']
  try {
    const handler = createCacheHandler({ keyPrefix: 'unconfigured:', log: (message) => log.push(message) })
    await handler.set('k', Promise.resolve(entry('v')))
    assert.equal(await handler.get('k', []), undefined)
    await handler.updateTags(['t'])
  } finally {
    if (saved !== undefined) {
      process.env['TAGCACHED_SERVERS'] = saved
    }
  }
  assert.deepEqual(log, ['[tagcached/next] no servers (TAGCACHED_SERVERS is not set): Next.js caches nothing in this process'])
})

test('TAGCACHED_SERVERS configures the handler when no option does', { timeout: BOUND }, async () => {
  const saved = process.env['TAGCACHED_SERVERS']
  process.env['TAGCACHED_SERVERS'] = ` ${daemon.address} `
  try {
    const handler = createCacheHandler({ keyPrefix: 'from-env:' })
    await handler.set('k', Promise.resolve(entry('from the environment')))
    assert.equal(await text(await handler.get('k', [])), 'from the environment')
    assert.equal((await client().get('from-env:uc:k')) !== null, true)
  } finally {
    if (saved === undefined) {
      delete process.env['TAGCACHED_SERVERS']
    } else {
      process.env['TAGCACHED_SERVERS'] = saved
    }
  }
})
