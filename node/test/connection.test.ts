// One connection: pipelining, the bounded queue, quiet requests, response
// matching, timeouts, HELLO and shards; against the real daemon, and a
// scripted server for what the daemon never does.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import {
  Client,
  ConnectionError,
  Connection,
  ProtocolError,
  ServerError,
  TimeoutError,
  UnsupportedError,
} from '../dist/index.js'
import { BOUND, Daemon } from './support/daemon.js'
import { FakeServer, frame } from './support/fake-server.js'

let daemon: Daemon

before(async () => {
  daemon = await Daemon.start()
})

after(async () => {
  await daemon.stop()
})

async function totalConnections(): Promise<number> {
  const probe = await Connection.connect(daemon.address)
  try {
    return Number((await probe.stats()).get('total_connections'))
  } finally {
    probe.close()
  }
}

test('HELLO reports the limits, features and shard, and moves the connection to the shard asked', { timeout: BOUND }, async () => {
  const any = await Connection.connect(daemon.address)
  assert.equal(any.hello.shardCount, 2)
  assert.equal(any.hello.maxKeyLength, 250)
  assert.equal(any.hello.maxFrame, 2_099_492)
  assert.ok(any.hello.features.shardAware && any.hello.features.leases && any.hello.features.staleWhileRevalidate)
  assert.match(any.hello.serverVersion, /^tagcached /)
  any.close()
  const second = await Connection.connect(daemon.address, { shard: 1 })
  assert.equal(second.hello.shard, 1)
  second.close()
  await assert.rejects(Connection.connect(daemon.address, { shard: 5 }), { statusName: 'MALFORMED' })
})

test('ten thousand concurrent requests pipeline on one connection, each answered with its own', { timeout: BOUND }, async () => {
  const before = await totalConnections()
  const connection = await Connection.connect(daemon.address, { requestTimeout: 20_000 })
  const count = 10_000
  const stored = await Promise.all(
    Array.from({ length: count }, (_, n) => connection.set(`pipe:${n}`, `value ${n}`, { tags: [`t${n % 7}`] })),
  )
  assert.ok(stored.every((result) => result.stored))
  const reads = await Promise.all(
    Array.from({ length: count }, (_, n) =>
      n % 2 === 0 ? connection.get(`pipe:${n}`) : connection.lookup(`pipe:${n}`, { withTags: true }),
    ),
  )
  reads.forEach((read, n) => {
    const item = read !== null && 'status' in read ? read.item : read
    assert.equal(item?.value.toString(), `value ${n}`)
  })
  connection.close()
  assert.equal((await totalConnections()) - before, 2, 'one for the requests, one for this count')
})

test('past queueDepth, requests wait in order for room', { timeout: BOUND }, async () => {
  const connection = await Connection.connect(daemon.address, { queueDepth: 4 })
  const writes = Array.from({ length: 300 }, (_, n) => connection.set('queued', String(n)))
  assert.equal(connection.pending, 300)
  const read = connection.get('queued')
  await Promise.all(writes)
  assert.equal((await read)?.value.toString(), '299', 'the read was sent after every write')
  assert.equal(connection.pending, 0)
  connection.close()
})

test('a request that times out fails naming the server; its late answer is dropped', { timeout: BOUND }, async () => {
  const connection = await Connection.connect(daemon.address, { requestTimeout: 200 })
  await connection.set('late:a', 'a')
  await connection.set('late:b', 'b')
  await daemon.pause()
  try {
    const started = Date.now()
    await assert.rejects(connection.get('late:a'), (error: unknown) => {
      assert.ok(error instanceof TimeoutError)
      assert.equal(error.code, 'TAGCACHED_TIMEOUT')
      assert.equal(error.server, daemon.address)
      assert.match(error.message, /GET timed out after 200 ms/)
      return true
    })
    assert.ok(Date.now() - started < 2000)
  } finally {
    daemon.resume()
  }
  // The answer to the timed-out GET arrives first and is dropped: this read
  // gets its own.
  assert.equal((await connection.get('late:b'))?.value.toString(), 'b')
  assert.equal(connection.isClosed, false)
  connection.close()
})

test('connecting times out when the server does not answer HELLO', { timeout: BOUND }, async () => {
  await daemon.pause()
  try {
    await assert.rejects(Connection.connect(daemon.address, { connectTimeout: 200 }), (error: unknown) => {
      assert.ok(error instanceof TimeoutError)
      assert.match(error.message, /connect timed out after 200 ms/)
      return true
    })
  } finally {
    daemon.resume()
  }
  await assert.rejects(Connection.connect('127.0.0.1:1'), (error: unknown) => {
    assert.ok(error instanceof ConnectionError)
    assert.equal(error.server, '127.0.0.1:1')
    assert.match(error.message, /^127\.0\.0\.1:1: connect failed: .*ECONNREFUSED/)
    return true
  })
})

test('a shard-aware client opens one connection per server shard; without, one per server', { timeout: BOUND }, async () => {
  const keys = Array.from({ length: 20 }, (_, n) => `lane:${n}`)
  for (const shardAware of [true, false]) {
    const before = await totalConnections()
    const cache = new Client({ servers: [daemon.address], shardAware })
    await Promise.all(keys.map((key) => cache.set(key, key)))
    assert.deepEqual((await cache.getMany(keys)).map((item) => item?.value.toString()), keys)
    await cache.close()
    const opened = (await totalConnections()) - before - 1
    assert.equal(opened, shardAware ? 2 : 1, `shardAware: ${shardAware}`)
  }
})

test('a quiet GETM is complete when the NOOP behind it is answered', { timeout: BOUND }, async () => {
  const fake = await FakeServer.start((request) => {
    if (request.opcode === 0x11) {
      // GETM of two keys: only the first is a hit (key_index 0); the miss is quiet.
      const hit = Buffer.alloc(2 + 8 + 8 + 4 + 2)
      hit.writeUInt16BE(0, 0)
      hit.writeBigUInt64BE(5n, 2)
      hit.writeBigUInt64BE(9n, 10)
      return [frame(0x11, 0x0001, request.opaque, Buffer.concat([hit, Buffer.from('v0')]))]
    }
    return [frame(request.opcode, 0, request.opaque)]
  })
  try {
    const connection = await Connection.connect(fake.address)
    const items = await connection.getMany(['a', 'b'])
    assert.equal(items[0]?.value.toString(), 'v0')
    assert.equal(items[0]?.cas, 9n)
    assert.equal(items[1], null)
    const sent = fake.requests.map((request) => [request.opcode, request.flags & 0x01])
    assert.deepEqual(sent, [[0x00, 0], [0x11, 1], [0x02, 0]], 'HELLO, then GETM with QUIET, then NOOP')
    connection.close()
  } finally {
    await fake.stop()
  }
})

test('a response to no request fails every request on the connection, naming the server', { timeout: BOUND }, async () => {
  let held: number | null = null
  const fake = await FakeServer.start((request, socket) => {
    if (held === null) {
      held = request.opaque
      return []
    }
    // Answer the second request before the first: out of order.
    socket.write(frame(request.opcode, 0x0002, request.opaque, Buffer.alloc(8)))
    return []
  })
  try {
    const connection = await Connection.connect(fake.address)
    const first = connection.get('a')
    const second = connection.get('b')
    for (const pending of [first, second]) {
      await assert.rejects(pending, (error: unknown) => {
        assert.ok(error instanceof ProtocolError)
        assert.equal(error.server, fake.address)
        assert.match(error.message, /to no request at the front of the queue/)
        return true
      })
    }
    assert.equal(connection.isClosed, true)
    await assert.rejects(connection.ping(), ProtocolError)
  } finally {
    await fake.stop()
  }
})

test('a server that closes fails the requests in flight; a fatal status names itself', { timeout: BOUND }, async () => {
  const fake = await FakeServer.start((request, socket) => {
    if (request.opcode === 0x01) {
      socket.end(frame(0x01, 0x010d, request.opaque, Buffer.from('at max_connections')))
      return []
    }
    socket.destroy()
    return []
  })
  try {
    const busy = await Connection.connect(fake.address)
    await assert.rejects(busy.ping(), (error: unknown) => {
      assert.ok(error instanceof ServerError)
      assert.equal(error.statusName, 'BUSY')
      assert.equal(error.unavailable, true)
      assert.match(error.message, /BUSY \(0x010d\): at max_connections$/)
      return true
    })
    const dropped = await Connection.connect(fake.address)
    await assert.rejects(dropped.get('k'), (error: unknown) => {
      assert.ok(error instanceof ConnectionError)
      assert.equal(error.server, fake.address)
      return true
    })
  } finally {
    await fake.stop()
  }
})

test('a server without stale-while-revalidate or leases is not sent what needs them', { timeout: BOUND }, async () => {
  const fake = await FakeServer.start((request) => [frame(request.opcode, 0x0002, request.opaque, Buffer.alloc(8))], 0b0011n)
  try {
    const connection = await Connection.connect(fake.address)
    await assert.rejects(connection.get('k', { allowStale: true }), UnsupportedError)
    await assert.rejects(connection.lookup('k', { lease: true }), /refresh leases/)
    await assert.rejects(connection.invalidateTags(['t'], { soft: true }), UnsupportedError)
    assert.equal(await connection.get('k'), null, 'a plain read is sent')
    assert.equal(fake.requests.length, 2, 'HELLO and the plain GET only')
    connection.close()
  } finally {
    await fake.stop()
  }
})
