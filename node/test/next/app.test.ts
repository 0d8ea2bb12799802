// The proof: a real Next.js 16 app (test/next-app/), built once, two
// `next start` instances on loopback sharing one tagcached daemon, driven
// over HTTP. Each page shows which render it is (instance, process, count),
// and every render is appended to RENDER_LOG, so "served from the cache"
// means "the same render, and no new line".
//
// Run by `npm run test:next` (not by `npm test`): it builds the app, which
// needs `npm ci` in test/next-app first.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'

import { Daemon, eventually } from '../support/daemon.js'
import { BUILD_TIMEOUT, NextInstance, Origin, buildApp, freePort } from '../support/next-app.js'

/** The longest one step may take, milliseconds. */
const STEP = 60_000
/** Bound on one HTTP request to an instance. */
const REQUEST_TIMEOUT = 30_000

let daemon: Daemon
let origin: Origin
let a: NextInstance
let b: NextInstance
let scratch: string
let renderLog: string

function environment(): Record<string, string> {
  return { TAGCACHED_SERVERS: daemon.address, RENDER_LOG: renderLog, ORIGIN_URL: origin.url }
}

before(
  async () => {
    scratch = mkdtempSync(join(tmpdir(), 'tagcached-next-'))
    renderLog = join(scratch, 'renders.log')
    writeFileSync(renderLog, '')
    await buildApp()
    daemon = await Daemon.start()
    origin = await Origin.start()
    ;[a, b] = await Promise.all([
      freePort().then((port) => NextInstance.start('A', port, environment())),
      freePort().then((port) => NextInstance.start('B', port, environment())),
    ])
  },
  { timeout: BUILD_TIMEOUT + STEP },
)

after(async () => {
  await Promise.all([a?.stop(), b?.stop()])
  await Promise.all([daemon?.stop(), origin?.stop()])
  if (scratch !== undefined) {
    rmSync(scratch, { recursive: true, force: true })
  }
})

/** GETs `path` from `instance`: a page, never an error page; resolves with the render it shows. */
async function render(instance: NextInstance, path: string): Promise<string> {
  const response = await fetch(`${instance.origin}${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT) })
  const body = await response.text()
  assert.equal(response.status, 200, `${instance.name} ${path}: ${response.status}\n${body.slice(0, 2000)}`)
  assert.doesNotMatch(body, /Application error|Internal Server Error/, `${instance.name} ${path} is an error page`)
  const shown = /id="render">([^<]*)</.exec(body)?.[1]
  assert.ok(shown !== undefined, `${instance.name} ${path} shows no render:\n${body.slice(0, 2000)}`)
  return shown
}

/** How many times `what` (posts, isr) has been rendered, by any instance. */
function renders(what: string): number {
  return readFileSync(renderLog, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith(`${what} `)).length
}

/**
 * Submits the admin page's form `id` to `instance`, as a browser without
 * scripts does: the form's hidden action field, posted back to the page.
 */
async function act(instance: NextInstance, id: string): Promise<void> {
  const page = await (await fetch(`${instance.origin}/admin`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT) })).text()
  const field = new RegExp(`<form id="${id}"[^>]*><input type="hidden" name="(\\$ACTION_ID_[0-9a-f]+)"`).exec(page)?.[1]
  assert.ok(field !== undefined, `no form ${id} on /admin:\n${page.slice(0, 2000)}`)
  const form = new FormData()
  form.append(field, '')
  const response = await fetch(`${instance.origin}/admin`, {
    method: 'POST',
    body: form,
    headers: { origin: instance.origin },
    redirect: 'manual',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT),
  })
  assert.ok(response.status === 200 || response.status === 303, `${id} on ${instance.name}: ${response.status}`)
  await response.arrayBuffer()
}

/** POSTs to the app's route handler, which calls revalidateTag or revalidatePath. */
async function revalidate(instance: NextInstance, query: string): Promise<void> {
  const response = await fetch(`${instance.origin}/api/revalidate?${query}`, {
    method: 'POST',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT),
  })
  assert.equal(response.status, 200, await response.text())
}

test('a page rendered by instance A is served from the cache by instance B: no second render', { timeout: STEP }, async () => {
  const posts = await render(a, '/posts')
  assert.match(posts, /^posts render A-/)
  assert.equal(await render(b, '/posts'), posts)
  assert.equal(await render(a, '/posts'), posts)
  assert.equal(renders('posts'), 1, "'use cache' with cacheTag and cacheLife: one render for both")

  const isr = await render(a, '/isr')
  assert.match(isr, /^isr render A-/)
  assert.equal(await render(b, '/isr'), isr)
  assert.equal(renders('isr'), 1, 'the ISR page: one render for both')

  assert.equal(await render(b, '/fetched'), 'origin fetch 1')
  assert.equal(await render(a, '/fetched'), 'origin fetch 1')
  assert.equal(origin.fetches, 1, 'fetch with next.tags: one request to the origin for both')
})

test("revalidateTag('posts', 'max') through A: B serves the stale page once, then the fresh one", { timeout: STEP }, async () => {
  const before = await render(b, '/posts')
  const rendered = renders('posts')
  await act(a, 'revalidate-posts-max')
  assert.equal(await render(b, '/posts'), before, 'stale, once, while B renders it anew')
  // Next.js stores the new render after the stale response has gone (its
  // waitUntil): a request that comes before is served the stale copy too,
  // without another render (B holds the refresh lease).
  let fresh = before
  await eventually('B serving the fresh page', async () => (fresh = await render(b, '/posts')) !== before, 20_000)
  assert.match(fresh, /^posts render B-/)
  assert.equal(await render(a, '/posts'), fresh, 'A serves what B rendered')
  assert.equal(renders('posts'), rendered + 1, 'one regeneration for both instances')
})

/**
 * Submits form `id` on B and checks that `path` is fresh at once: a new
 * render on A's first request after, the same one on B, one render in all.
 */
async function freshAtOnce(path: string, what: string, id: string): Promise<void> {
  const before = await render(a, path)
  assert.equal(await render(b, path), before)
  const rendered = renders(what)
  await act(b, id)
  const fresh = await render(a, path)
  assert.notEqual(fresh, before, 'A: fresh on the first request after')
  assert.equal(await render(b, path), fresh, 'B: the same fresh render')
  assert.equal(renders(what), rendered + 1)
}

test('updateTag through B: both instances serve the fresh page at once', { timeout: STEP }, async () => {
  await freshAtOnce('/posts', 'posts', 'update-posts')
})

test("revalidatePath('/isr') through B: both instances serve the fresh page at once", { timeout: STEP }, async () => {
  await freshAtOnce('/isr', 'isr', 'revalidate-isr-path')
})

test('a route handler revalidateTag of a fetch tag: both instances fetch anew once', { timeout: STEP }, async () => {
  await revalidate(a, 'tag=origin')
  assert.equal(await render(b, '/fetched'), 'origin fetch 2')
  assert.equal(await render(a, '/fetched'), 'origin fetch 2')
  assert.equal(origin.fetches, 2)
})

test('restarting one instance loses nothing: the new process serves what is cached', { timeout: STEP }, async () => {
  const posts = await render(a, '/posts')
  const isr = await render(a, '/isr')
  const rendered = { posts: renders('posts'), isr: renders('isr') }
  await b.stop()
  b = await NextInstance.start('B', await freePort(), environment())
  assert.equal(await render(b, '/posts'), posts)
  assert.equal(await render(b, '/isr'), isr)
  assert.equal(await render(b, '/fetched'), 'origin fetch 2')
  assert.deepEqual({ posts: renders('posts'), isr: renders('isr') }, rendered)
})

test('with the daemon stopped, pages render uncached, without an error page, and each instance logs it once', { timeout: STEP }, async () => {
  await daemon.stop()
  const seen = new Set<string>()
  for (let request = 0; request < 4; request += 1) {
    seen.add(await render(a, '/posts'))
  }
  assert.equal(seen.size, 4, `every request renders: ${[...seen].join(', ')}`)
  await render(b, '/isr')
  await render(b, '/posts')
  assert.equal(await render(b, '/fetched'), `origin fetch ${origin.fetches}`)
  assert.equal(a.lines(/is unreachable/).length, 1, a.log.join('\n'))
  assert.equal(b.lines(/is unreachable/).length, 1, b.log.join('\n'))
})

test('with the daemon started again, caching resumes', { timeout: STEP }, async () => {
  daemon = await daemon.restart()
  // Each instance's client probes the server after a backoff (5 s at most).
  await eventually(
    'A caching /posts again',
    async () => (await render(a, '/posts')) === (await render(a, '/posts')),
    30_000,
  )
  const posts = await render(a, '/posts')
  const rendered = renders('posts')
  await eventually('B reaching the daemon again', async () => (await render(b, '/posts')) === posts, 30_000)
  assert.equal(renders('posts'), rendered, 'B renders nothing: it reads what A stored')
  assert.equal(a.lines(/answers again/).length, 1, a.log.join('\n'))
})
