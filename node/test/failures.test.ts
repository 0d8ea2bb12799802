// Servers that go away: errors that name the server, marking down,
// reconnecting when it is back, invalidations owed to a server that missed
// them; and placement over two real daemons.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import {
  Client,
  ConnectionError,
  Connection,
  ServerDownError,
  TagcachedError,
  UnacknowledgedError,
} from '../dist/index.js'
import { BOUND, Daemon, eventually } from './support/daemon.js'

/** A client that gives up on a server quickly, so the tests stay short. */
function quickClient(servers: string[]): Client {
  return new Client({
    servers,
    requestTimeout: 300,
    connectTimeout: 300,
    failureThreshold: 2,
    backoffMin: 20,
    backoffMax: 100,
  })
}

test('a killed server: errors name it, it is marked down, and the client reconnects when it is back', { timeout: BOUND }, async () => {
  let daemon = await Daemon.start()
  const cache = quickClient([daemon.address])
  try {
    await cache.set('k', 'before')
    assert.equal((await cache.get('k'))?.value.toString(), 'before')
    await daemon.kill()

    // Until it is marked down, requests fail with errors naming it.
    const failure = await cache.set('k', 'v').then(
      () => assert.fail('a SET to a killed server succeeded'),
      (error: unknown) => error,
    )
    assert.ok(failure instanceof TagcachedError)
    assert.ok(failure instanceof ConnectionError, `${String(failure)}`)
    assert.equal(failure.server, daemon.address)
    assert.ok(failure.message.startsWith(`${daemon.address}: `))

    // After repeated failures it is down: reads miss and writes fail at once.
    await eventually('the server marked down', async () => {
      await cache.set('k', 'v').catch(() => {})
      return cache.serverStatus()[0]?.down === true
    })
    assert.equal(await cache.get('k'), null)
    assert.deepEqual(await cache.lookup('k'), { status: 'MISS', item: null, fence: 1n, lease: null })
    await assert.rejects(cache.set('k', 'v'), (error: unknown) => {
      assert.ok(error instanceof ServerDownError)
      assert.equal(error.code, 'TAGCACHED_SERVER_DOWN')
      assert.equal(error.server, daemon.address)
      return true
    })
    const status = cache.serverStatus()[0]
    assert.equal(status?.server, daemon.address)
    assert.ok(status?.lastError instanceof TagcachedError)

    // Back on the same port: a request after the backoff starts the probe,
    // which reconnects.
    daemon = await daemon.restart()
    await eventually('the client to reconnect', async () => {
      const result = await cache.set('k', 'after').catch(() => null)
      return result?.stored === true
    })
    assert.equal(cache.serverStatus()[0]?.down, false)
    assert.equal((await cache.get('k'))?.value.toString(), 'after')
  } finally {
    await cache.close()
    await daemon.stop()
  }
})

test('an invalidation a server missed is delivered before the server is used again', { timeout: BOUND }, async () => {
  const daemon = await Daemon.start()
  const cache = quickClient([daemon.address])
  try {
    await cache.set('owed:k', 'v', { tags: ['owed'] })
    await daemon.pause()
    try {
      // Timeouts mark it down; the invalidation is then not sent but owed.
      await eventually('the server marked down', async () => {
        await cache.get('owed:k').catch(() => {})
        return cache.serverStatus()[0]?.down === true
      })
      await assert.rejects(cache.invalidateTags(['owed']), (error: unknown) => {
        assert.ok(error instanceof UnacknowledgedError)
        assert.equal(error.code, 'TAGCACHED_UNACKNOWLEDGED')
        assert.equal(error.failures[0]?.server, daemon.address)
        assert.ok(error.failures[0]?.error instanceof ServerDownError)
        assert.match(error.message, new RegExp(`1 of 1 servers did not acknowledge: ${daemon.address.replace(/\./g, '\\.')}: `))
        return true
      })
      assert.equal(cache.serverStatus()[0]?.owedTags, 1)
    } finally {
      daemon.resume()
    }
    // The server kept the entry (it never saw the invalidation); the probe
    // delivers it before marking the server up.
    await eventually('the client to recover', async () => {
      await cache.get('owed:k').catch(() => {})
      return cache.serverStatus()[0]?.down === false
    })
    assert.equal(cache.serverStatus()[0]?.owedTags, 0)
    assert.equal(await cache.get('owed:k'), null)
  } finally {
    await cache.close()
    await daemon.stop()
  }
})

test('over two servers keys live where serverFor says; one going away leaves the other serving', { timeout: BOUND }, async () => {
  const first = await Daemon.start()
  const second = await Daemon.start()
  const cache = quickClient([first.address, second.address])
  try {
    const keys = Array.from({ length: 200 }, (_, n) => `spread:${n}`)
    await Promise.all(keys.map((key) => cache.set(key, key, { tags: ['spread'] })))
    const owners = new Map(keys.map((key) => [key, cache.serverFor(key)]))
    for (const daemon of [first, second]) {
      const direct = await Connection.connect(daemon.address)
      const found = await direct.getMany(keys)
      direct.close()
      keys.forEach((key, n) => {
        assert.equal(found[n] !== null, owners.get(key) === daemon.address, `${key} on ${daemon.address}`)
      })
    }
    const onSecond = keys.filter((key) => owners.get(key) === second.address)
    assert.ok(onSecond.length > 50 && onSecond.length < 150)

    // Invalidation goes to both.
    assert.equal((await cache.invalidateTags(['spread'])).length, 2)
    assert.deepEqual(await cache.getMany(keys), keys.map(() => null))

    await first.kill()
    const onFirst = keys.find((key) => owners.get(key) === first.address) ?? ''
    await cache.set(onSecond[0] ?? '', 'still')
    await assert.rejects(cache.set(onFirst, 'v'), (error: unknown) => {
      assert.ok(error instanceof TagcachedError)
      assert.equal(error.server, first.address)
      return true
    })
    assert.equal((await cache.get(onSecond[0] ?? ''))?.value.toString(), 'still')
    await assert.rejects(cache.ping(), (error: unknown) => {
      assert.ok(error instanceof UnacknowledgedError)
      assert.deepEqual(
        error.failures.map((failure) => failure.server),
        [first.address],
      )
      return true
    })
  } finally {
    await cache.close()
    await first.stop()
    await second.stop()
  }
})

test('a closed client refuses every call', { timeout: BOUND }, async () => {
  const daemon = await Daemon.start()
  const cache = new Client({ servers: [daemon.address] })
  try {
    await cache.set('k', 'v')
    await cache.close()
    await assert.rejects(cache.get('k'), { code: 'TAGCACHED_CLOSED' })
    await assert.rejects(cache.invalidateTags(['t']), { code: 'TAGCACHED_CLOSED' })
  } finally {
    await daemon.stop()
  }
})
