import { revalidateIsrPath, revalidatePostsMax, updatePosts } from '../actions.js'

// Server Actions as plain forms: they work without JavaScript, so the test
// posts them as a browser without scripts would.
export default function AdminPage() {
  return (
    <main>
      <h1>Admin</h1>
      <form id="update-posts" action={updatePosts}>
        <button type="submit">updateTag('posts')</button>
      </form>
      <form id="revalidate-posts-max" action={revalidatePostsMax}>
        <button type="submit">revalidateTag('posts', 'max')</button>
      </form>
      <form id="revalidate-isr-path" action={revalidateIsrPath}>
        <button type="submit">revalidatePath('/isr')</button>
      </form>
    </main>
  )
}
