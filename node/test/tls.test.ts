// TLS (protocol.md §1): the client's `tls` option against the real daemon
// serving TLS, with certificates made at test time (support/pki.ts).

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'

import { Client, Connection, ConnectionError, ProtocolError } from '../dist/index.js'
import { BOUND, Daemon } from './support/daemon.js'
import { Pki } from './support/pki.js'

let pki: Pki
let daemon: Daemon
let mutual: Daemon

before(async () => {
  pki = Pki.make()
  const files = ['--tls-cert', pki.path('server.pem'), '--tls-key', pki.path('server.key')]
  daemon = await Daemon.start(files)
  mutual = await Daemon.start([...files, '--tls-client-ca', pki.path('ca.pem')])
})

after(async () => {
  await daemon.stop()
  await mutual.stop()
  pki.remove()
})

test('a client with tls and the CA is served, shard-aware, by IP address and by name', { timeout: BOUND }, async () => {
  const client = new Client({ servers: [daemon.address], tls: { ca: pki.read('ca.pem') } })
  try {
    for (let i = 0; i < 50; i++) {
      await client.set(`node-tls-${i}`, `v${i}`, { tags: ['node-tls'] })
    }
    for (let i = 0; i < 50; i++) {
      assert.equal((await client.get(`node-tls-${i}`))?.value.toString(), `v${i}`)
    }
    await client.invalidateTags(['node-tls'])
    assert.equal(await client.get('node-tls-0'), null)
  } finally {
    await client.close()
  }
  const named = await Connection.connect(daemon.address, {
    tls: { ca: pki.read('ca.pem'), servername: 'localhost' },
    shard: 1,
  })
  assert.equal(named.hello.shard, 1)
  await named.ping()
  named.close()
})

test('a server whose certificate another CA signed is refused', { timeout: BOUND }, async () => {
  await assert.rejects(
    Connection.connect(daemon.address, { tls: { ca: pki.read('other-ca.pem') } }),
    (error: unknown) => error instanceof ConnectionError && /certificate/i.test(error.message),
  )
  // Node's own CAs do not include the test CA either.
  await assert.rejects(Connection.connect(daemon.address, { tls: true }), ConnectionError)
  // And the name must match.
  await assert.rejects(
    Connection.connect(daemon.address, { tls: { ca: pki.read('ca.pem'), servername: 'elsewhere' } }),
    ConnectionError,
  )
})

test('a plain connection to a TLS port fails at once, and a TLS one to a plain port', { timeout: BOUND }, async () => {
  // It reads a TLS alert record (its first byte 0x15) where a response belongs.
  await assert.rejects(
    Connection.connect(daemon.address, { connectTimeout: 5000 }),
    (error: unknown) => error instanceof ProtocolError && /magic 0x15/.test(error.message),
  )
  const plain = await Daemon.start()
  try {
    await assert.rejects(
      Connection.connect(plain.address, { tls: { ca: pki.read('ca.pem') }, connectTimeout: 5000 }),
      ConnectionError,
    )
  } finally {
    await plain.stop()
  }
})

test('a server that requires client certificates serves the CA\'s and refuses none', { timeout: BOUND }, async () => {
  const withCert = await Connection.connect(mutual.address, {
    tls: { ca: pki.read('ca.pem'), cert: pki.read('client.pem'), key: pki.read('client.key') },
  })
  await withCert.set('mutual', 'yes')
  assert.equal((await withCert.get('mutual'))?.value.toString(), 'yes')
  withCert.close()
  await assert.rejects(Connection.connect(mutual.address, { tls: { ca: pki.read('ca.pem') } }), ConnectionError)
})
