/**
 * A Node.js client for tagcached, the cache daemon that invalidates by tag.
 *
 * ```js
 * import { Client } from 'tagcached'
 *
 * const cache = new Client({ servers: ['127.0.0.1:11311'] })
 * await cache.set('page:/posts/3', html, { tags: ['post:3', 'posts'], ttl: 3600 })
 * const hit = await cache.get('page:/posts/3') // null on a miss, else { value: Buffer, ... }
 * await cache.invalidateTags(['post:3']) // hard; { soft: true, expire: 3600 } for soft
 * await cache.close()
 * ```
 *
 * Layers, each importing only from those before it: `errors`, `protocol`
 * (bytes), `placement` (hashes), `commands` (each command's request and
 * answer), `connection` (one pipelined TCP connection), `health` and
 * `pool` (one server's connections and failures), `client`.
 *
 * @module
 */

export { Client, type ClientOptions, type ServerStatus, type ServerStats } from './client.js'
export {
  DEFAULT_SOFT_EXPIRE,
  UNAVAILABLE_FENCE,
  type InvalidateOptions,
  type Invalidation,
  type Item,
  type Key,
  type Lookup,
  type LookupOptions,
  type ReadOptions,
  type SetMode,
  type SetOptions,
  type SetResult,
  type SoftInvalidation,
  type TagReport,
  type TagState,
  type Value,
} from './commands.js'
export { Connection, type ConnectionOptions, type TlsOptions } from './connection.js'
export {
  AuthenticationError,
  ClosedError,
  ConnectionError,
  InvalidArgumentError,
  ProtocolError,
  ServerDownError,
  ServerError,
  TagcachedError,
  TimeoutError,
  UnacknowledgedError,
  UnsupportedError,
  type ErrorCode,
  type ServerFailure,
} from './errors.js'
export type { Features, HelloInfo } from './protocol.js'
