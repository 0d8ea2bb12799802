import { cacheLife, cacheTag } from 'next/cache'

import { recordRender } from '../render.js'

// A static page, prerendered and revalidated (ISR): the whole page is cached
// in the incremental cache, and its 'use cache' body in the cache handlers.
export default async function IsrPage() {
  'use cache'
  cacheTag('isr')
  cacheLife({ stale: 60, revalidate: 3600, expire: 86400 })
  const render = recordRender('isr')
  return (
    <main>
      <h1>ISR</h1>
      <p id="render">{`isr render ${render}`}</p>
    </main>
  )
}
