// Authentication (issue 11, protocol.md §6.12) against the real daemon
// started with --auth-token-file: every connection of a Client (one per
// shard, and those opened again) sends AUTH after HELLO; a missing or wrong
// token is an AuthenticationError naming the server.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { AuthenticationError, Client, Connection } from '../dist/index.js'
import { createIncrementalCache, type IncrementalCacheValue } from '../dist/next/index.js'
import { BOUND, Daemon } from './support/daemon.js'

const TOKEN = 'node-test-token'

let daemon: Daemon
let open: Daemon
let directory: string

before(async () => {
  directory = mkdtempSync(join(tmpdir(), 'tagcached-node-auth-'))
  const tokens = join(directory, 'tokens')
  writeFileSync(tokens, `# the Node tests\n${TOKEN}\nsecond token\n`)
  daemon = await Daemon.start(['--auth-token-file', tokens])
  open = await Daemon.start()
})

after(async () => {
  await daemon.stop()
  await open.stop()
  rmSync(directory, { recursive: true, force: true })
})

test('a client with the token authenticates every shard connection', { timeout: BOUND }, async () => {
  const cache = new Client({ servers: [daemon.address], authToken: TOKEN })
  try {
    // Keys on both shards, so both lanes open and authenticate.
    for (let n = 0; n < 32; n++) {
      assert.ok((await cache.set(`auth:${n}`, `v${n}`, { tags: ['auth'] })).stored)
      assert.equal((await cache.get(`auth:${n}`))?.value.toString(), `v${n}`)
    }
    await cache.invalidateTags(['auth'])
    assert.equal(await cache.get('auth:0'), null)
  } finally {
    await cache.close()
  }
})

test('a connection reports that the server requires authentication, and a Buffer token works', { timeout: BOUND }, async () => {
  const connection = await Connection.connect(daemon.address, { authToken: Buffer.from('second token') })
  try {
    assert.equal(connection.hello.features.authentication, true)
    await connection.ping()
    assert.ok((await connection.set('buffer-token', 'v')).stored)
  } finally {
    connection.close()
  }
})

test('a missing or wrong token is an AuthenticationError naming the server', { timeout: BOUND }, async () => {
  await assert.rejects(Connection.connect(daemon.address), (error: unknown) => {
    assert.ok(error instanceof AuthenticationError)
    assert.equal(error.code, 'TAGCACHED_AUTH')
    assert.equal(error.server, daemon.address)
    assert.match(error.message, /no authToken was given/)
    return true
  })
  await assert.rejects(Connection.connect(daemon.address, { authToken: 'wrong' }), (error: unknown) => {
    assert.ok(error instanceof AuthenticationError)
    assert.equal(error.server, daemon.address)
    assert.match(error.message, /AUTH_FAILED/)
    assert.ok(error.unavailable)
    return true
  })
  const cache = new Client({ servers: [daemon.address], authToken: 'wrong' })
  try {
    await assert.rejects(cache.set('k', 'v'), AuthenticationError)
  } finally {
    await cache.close()
  }
})

test('a client reconnecting to a restarted server authenticates the new connection', { timeout: BOUND }, async () => {
  const cache = new Client({ servers: [daemon.address], authToken: TOKEN, shardAware: false, backoffMin: 10, backoffMax: 50 })
  try {
    assert.ok((await cache.set('reconnect', 'v')).stored)
    await daemon.stop()
    daemon = await daemon.restart(['--auth-token-file', join(directory, 'tokens')])
    const deadline = Date.now() + 5000
    for (;;) {
      try {
        assert.ok((await cache.set('reconnect', 'again')).stored)
        break
      } catch (error) {
        // Only the connection to the stopped daemon may fail, never AUTH.
        assert.ok(!(error instanceof AuthenticationError), String(error))
        assert.ok(Date.now() < deadline, `never reconnected: ${String(error)}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    assert.equal((await cache.get('reconnect'))?.value.toString(), 'again')
  } finally {
    await cache.close()
  }
})

test('a token is not sent to a server that requires none', { timeout: BOUND }, async () => {
  const connection = await Connection.connect(open.address, { authToken: TOKEN })
  try {
    assert.equal(connection.hello.features.authentication, false)
    await connection.ping()
  } finally {
    connection.close()
  }
})

test('the Next.js handlers take the token from TAGCACHED_AUTH_TOKEN', { timeout: BOUND }, async () => {
  const saved = { servers: process.env['TAGCACHED_SERVERS'], token: process.env['TAGCACHED_AUTH_TOKEN'] }
  process.env['TAGCACHED_SERVERS'] = daemon.address
  process.env['TAGCACHED_AUTH_TOKEN'] = ` ${TOKEN}\n`
  const logged: string[] = []
  try {
    const Handler = createIncrementalCache({ keyPrefix: 'auth-next:', log: (message) => logged.push(message) })
    const handler = new Handler({ serverDistDir: '/nonexistent/.next/server' })
    const page: IncrementalCacheValue = {
      kind: 'APP_PAGE',
      html: '<p>authenticated</p>',
      rscData: Buffer.from([1, 2, 3]),
      headers: { 'x-next-cache-tags': 'auth-next' },
      postponed: undefined,
      status: 200,
      segmentData: new Map(),
    }
    await handler.set('/auth', page, { cacheControl: { revalidate: 3600, expire: 86400 } })
    const read = await handler.get('/auth', { kind: 'APP_PAGE', isFallback: false })
    assert.ok(read !== null, `stored and read through an authenticated client; logged: ${logged.join(' | ')}`)
    // The daemon requires the token: without it the handler would have
    // logged an outage and read nothing.
    assert.deepEqual(logged, [])
  } finally {
    for (const [name, value] of [['TAGCACHED_SERVERS', saved.servers], ['TAGCACHED_AUTH_TOKEN', saved.token]] as const) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    const registries = (globalThis as unknown as Record<symbol, { own: Map<string, { tagcached: Client | null }> } | undefined>)[
      Symbol.for('tagcached.next.stores')
    ]
    await Promise.all([...(registries?.own.values() ?? [])].map((store) => store.tagcached?.close()))
  }
})
