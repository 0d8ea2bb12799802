'use server'

import { revalidatePath, revalidateTag, updateTag } from 'next/cache'

// Read-your-own-writes: entries tagged `posts` are gone at once, everywhere.
export async function updatePosts() {
  updateTag('posts')
}

// Stale-while-revalidate: entries tagged `posts` are served once more, then refreshed.
export async function revalidatePostsMax() {
  revalidateTag('posts', 'max')
}

export async function revalidateIsrPath() {
  revalidatePath('/isr')
}
