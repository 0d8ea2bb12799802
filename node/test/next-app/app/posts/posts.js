import { cacheLife, cacheTag } from 'next/cache'

import { recordRender } from '../render.js'

// Cached for every instance: tagged `posts`, fresh for an hour, kept a day.
export async function getPosts() {
  'use cache'
  cacheTag('posts')
  cacheLife({ stale: 60, revalidate: 3600, expire: 86400 })
  return { render: recordRender('posts'), titles: ['First post', 'Second post'] }
}
