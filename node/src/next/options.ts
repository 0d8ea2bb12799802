/**
 * How the Next.js handlers find tagcached: an explicit
 * {@link TagcachedNextOptions} object, or the environment
 * (`TAGCACHED_SERVERS`, `TAGCACHED_KEY_PREFIX`, `TAGCACHED_AUTH_TOKEN`),
 * turned into one validated {@link NextSettings} in one place.
 *
 * @module
 */

import type { Client, ClientOptions } from '../client.js'

/** What the Next.js handlers are configured with. Every field is optional. */
export interface TagcachedNextOptions {
  /**
   * The servers, `host:port` each, spelled as every other client of the
   * cluster spells them (protocol.md §10). Default: `TAGCACHED_SERVERS`,
   * comma-separated.
   */
  readonly servers?: readonly string[]
  /** A client to use instead of making one; `servers` and `client` are then ignored. */
  readonly client?: Client
  /**
   * Options for the client the handlers make (all but `servers`). Without
   * an `authToken` among them, `TAGCACHED_AUTH_TOKEN` gives it, if set.
   */
  readonly clientOptions?: Omit<ClientOptions, 'servers'>
  /**
   * Put before every key, so that several apps can share a cluster; default
   * `TAGCACHED_KEY_PREFIX`, else `next:`. Tags are not prefixed: a tag is
   * the same tag for every client, so a Rust service invalidating `posts`
   * reaches the pages tagged `posts`.
   */
  readonly keyPrefix?: string
  /**
   * Where the handlers' few messages go (an outage, its end, a value too
   * large to store); default `console.warn`.
   */
  readonly log?: (message: string) => void
}

/** The environment variables the handlers read when no option says otherwise. */
export const ENV_SERVERS = 'TAGCACHED_SERVERS'
export const ENV_KEY_PREFIX = 'TAGCACHED_KEY_PREFIX'
/** The token for servers that require authentication (protocol.md §6.12). */
export const ENV_AUTH_TOKEN = 'TAGCACHED_AUTH_TOKEN'

/** The key prefix when neither the options nor the environment give one. */
export const DEFAULT_KEY_PREFIX = 'next:'

/** The handlers' settings, validated. `servers` empty: caching is off (nothing configured). */
export interface NextSettings {
  readonly servers: readonly string[]
  readonly client: Client | null
  readonly clientOptions: Omit<ClientOptions, 'servers'>
  readonly keyPrefix: string
  readonly log: (message: string) => void
  /** What the settings came from, for messages and for sharing one client per configuration. */
  readonly identity: string
}

/** The settings for `options`, filling what they leave out from `environment`. */
export function resolveSettings(
  options: TagcachedNextOptions = {},
  environment: NodeJS.ProcessEnv = process.env,
): NextSettings {
  const servers =
    options.servers ??
    (environment[ENV_SERVERS] ?? '')
      .split(',')
      .map((server) => server.trim())
      .filter((server) => server.length > 0)
  const keyPrefix = options.keyPrefix ?? environment[ENV_KEY_PREFIX] ?? DEFAULT_KEY_PREFIX
  const log = options.log ?? ((message: string) => console.warn(message))
  const client = options.client ?? null
  const authToken = environment[ENV_AUTH_TOKEN]?.trim() ?? ''
  const given = options.clientOptions ?? {}
  const clientOptions =
    given.authToken === undefined && authToken !== '' ? { ...given, authToken } : given
  return {
    servers: client === null ? [...servers] : client.servers,
    client,
    clientOptions,
    keyPrefix,
    log,
    identity: JSON.stringify({
      servers: client === null ? servers : client.servers,
      keyPrefix,
      clientOptions,
    }),
  }
}
