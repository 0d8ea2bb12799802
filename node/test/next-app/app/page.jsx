export default function Home() {
  return (
    <ul>
      <li><a href="/posts">posts</a> ('use cache', cacheTag posts)</li>
      <li><a href="/isr">isr</a> (a static page, revalidated)</li>
      <li><a href="/fetched">fetched</a> (fetch with next.tags)</li>
      <li><a href="/admin">admin</a> (Server Actions)</li>
    </ul>
  )
}
