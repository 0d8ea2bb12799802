import { connection } from 'next/server'

// A dynamic page whose data comes through Next.js's fetch cache, tagged
// `origin`. ORIGIN_URL answers how many times it has been fetched.
export default async function FetchedPage() {
  await connection()
  const response = await fetch(process.env.ORIGIN_URL ?? 'http://127.0.0.1:9/', {
    cache: 'force-cache',
    next: { tags: ['origin'] },
  })
  const data = await response.json()
  return (
    <main>
      <h1>Fetched</h1>
      <p id="render">{`origin fetch ${data.fetch}`}</p>
    </main>
  )
}
