/**
 * The cache clients whose `get` throughput is measured, each behind one
 * small interface: `set(key, value)`, `get(key)` (a `Buffer`, or `null` on
 * a miss), `close()`. Each is set up as its README sets it up, with its
 * defaults, asking for values as `Buffer`s (what the tagcached client
 * always answers) so that no client decodes UTF-8 the others skip.
 *
 * - `tagcached`: this package's `Client`: shard-aware, so one pipelined
 *   connection per server thread;
 * - `memjs`: memcached's most used Node.js client (binary protocol), one
 *   connection;
 * - `ioredis`: Redis's most used Node.js client, one connection, no
 *   auto-pipelining (its default);
 * - `node-redis`: the `redis` package, Redis's own client, one connection
 *   (it writes the commands of one turn of the event loop together).
 */

import { readFileSync } from 'node:fs'

import { Client } from 'tagcached'
import memjs from 'memjs'
import Redis from 'ioredis'
import { createClient, RESP_TYPES } from 'redis'

/** Each client by the name the benchmark takes. */
export const CLIENTS = {
  async tagcached(address) {
    const client = new Client({ servers: [address] })
    return {
      set: (key, value) => client.set(key, value),
      get: async (key) => (await client.get(key))?.value ?? null,
      close: () => client.close(),
    }
  },

  async memjs(address) {
    const client = memjs.Client.create(address, { logger: { log: () => {} } })
    return {
      set: (key, value) => client.set(key, value, { expires: 0 }),
      get: async (key) => (await client.get(key)).value,
      close: () => client.close(),
    }
  },

  async ioredis(address) {
    const [host, port] = address.split(':')
    const client = new Redis({ host, port: Number(port) })
    return {
      set: (key, value) => client.set(key, value),
      get: (key) => client.getBuffer(key),
      close: () => client.quit(),
    }
  },

  async 'node-redis'(address) {
    const connection = createClient({ url: `redis://${address}` })
    await connection.connect()
    const client = connection.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
    return {
      set: (key, value) => client.set(key, value),
      get: (key) => client.get(key),
      close: () => connection.close(),
    }
  },
}

/** The installed version of a package of this benchmark. */
export function installedVersion(name) {
  return JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
}

/** The installed version of each client's package. */
export function clientVersions() {
  const version = installedVersion
  return { tagcached: version('tagcached'), memjs: version('memjs'), ioredis: version('ioredis'), 'node-redis': version('redis') }
}
