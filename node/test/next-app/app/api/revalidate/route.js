import { revalidatePath, revalidateTag } from 'next/cache'

// POST /api/revalidate?tag=posts&profile=max, ?tag=origin (hard), or ?path=/isr.
export async function POST(request) {
  const url = new URL(request.url)
  const tag = url.searchParams.get('tag')
  const path = url.searchParams.get('path')
  if (tag !== null) {
    const profile = url.searchParams.get('profile')
    revalidateTag(tag, profile ?? { expire: 0 })
  } else if (path !== null) {
    revalidatePath(path)
  } else {
    return Response.json({ error: 'tag or path' }, { status: 400 })
  }
  return Response.json({ revalidated: tag ?? path })
}
