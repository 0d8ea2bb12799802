import { connection } from 'next/server'

import { getPosts } from './posts.js'

// A dynamic page (rendered per request) whose list comes from 'use cache'.
export default async function PostsPage() {
  await connection()
  const posts = await getPosts()
  return (
    <main>
      <h1>Posts</h1>
      <ul>
        {posts.titles.map((title) => (
          <li key={title}>{title}</li>
        ))}
      </ul>
      <p id="render">{`posts render ${posts.render}`}</p>
    </main>
  )
}
