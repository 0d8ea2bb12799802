// The proof app's Next.js config: both cache handlers on tagcached (from
// TAGCACHED_SERVERS), no in-process cache in front of them, so every read
// of every instance goes to the one shared cache.
import { fileURLToPath } from 'node:url'

const cacheHandlers = fileURLToPath(import.meta.resolve('tagcached/next/cache-handlers'))

/** @type {import('next').NextConfig} */
const config = {
  cacheComponents: true,
  cacheHandler: fileURLToPath(import.meta.resolve('tagcached/next/incremental-cache')),
  cacheHandlers: { default: cacheHandlers, remote: cacheHandlers },
  cacheMaxMemorySize: 0,
  partialPrefetching: true,
  // The package this app tests is node/, two levels up (a `file:` link),
  // so the project's root is node/; an app that installs tagcached from
  // the registry needs no root.
  turbopack: { root: fileURLToPath(new URL('../..', import.meta.url)) },
}

export default config
