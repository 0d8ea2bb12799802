/**
 * The cost of one `revalidateTag` (Next.js 16's `updateTag`: a hard
 * invalidation) with N entries cached, through each handler of
 * `handlers.js`, as the time from the handler's call to its promise
 * settling.
 *
 * Per size N: every handler's server is flushed and N entries stored
 * (entry i tagged `post:i` and `posts`), entries of a size never seen
 * before: a read leaves a fence for the write of its key that follows
 * (node/README.md, tagcached/next), and a write fenced before the flush
 * would rightly be refused. Then, the handlers taking turns
 * within each repetition:
 * - own tag: invalidate `post:j` of one entry j (a different one each
 *   time); checked: j was a hit before and is a miss after, and a sample of
 *   other entries still hit; j is stored again;
 * - shared tag: invalidate `posts`, which every entry carries; checked:
 *   all N were hits before and all N are misses after; all N are stored
 *   again before the next repetition.
 * A failed check stops the run: a benchmark that times a no-op is wrong.
 * The garbage collector runs before each timed call (`--expose-gc`), so
 * that a fill's garbage is not charged to the invalidation, then the
 * process idles SETTLE_MS. Besides the wall time, the CPU time this
 * process spent during the call is kept: a handler's work in the Next.js
 * process, which its other requests wait for.
 *
 * Usage: node --expose-gc revalidate.js --tagcached ADDR --tagcached-use-cache ADDR --redis ADDR
 *   [--sizes 1000,10000,100000] [--own-reps 20] [--shared-reps 10,10,5] [--json]
 * Prints the results as JSON on stdout with --json, else as a Markdown table.
 */

import { parseArgs } from 'node:util'

import { fortedigitalRedis, ownTag, SHARED_TAG, tagcachedIncremental, tagcachedUseCache } from './handlers.js'
import { revalidateTable } from './report.js'

/** Requests in flight while storing or checking entries. */
const IN_FLIGHT = 256
/** Milliseconds of quiet before each timed call, for the collector's and the servers' background work to end. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 50)
/** Other entries checked to still hit after an own-tag invalidation. */
const BYSTANDERS = 100

const { values: args } = parseArgs({
  options: {
    tagcached: { type: 'string' },
    'tagcached-use-cache': { type: 'string' },
    redis: { type: 'string' },
    sizes: { type: 'string', default: '1000,10000,100000' },
    'own-reps': { type: 'string', default: '20' },
    'shared-reps': { type: 'string', default: '10,10,5' },
    json: { type: 'boolean', default: false },
  },
})

if (typeof globalThis.gc !== 'function') {
  throw new Error('run with node --expose-gc')
}
const sizes = args.sizes.split(',').map(Number)
const ownReps = Number(args['own-reps'])
const sharedReps = args['shared-reps'].split(',').map(Number)
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || sharedReps.length !== sizes.length) {
  throw new Error('--sizes are positive integers, and --shared-reps gives one count per size')
}

const handlers = []
if (args.tagcached) handlers.push(tagcachedIncremental(args.tagcached))
if (args['tagcached-use-cache']) handlers.push(tagcachedUseCache(args['tagcached-use-cache']))
if (args.redis) handlers.push(await fortedigitalRedis(args.redis))
if (handlers.length === 0) throw new Error('give at least one of --tagcached, --tagcached-use-cache, --redis')

/** Runs `work(i)` for i in [from, to), at most IN_FLIGHT at once. */
async function each(from, to, work) {
  let next = from
  const lane = async () => {
    while (next < to) {
      const i = next
      next += 1
      await work(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, to - from) }, lane))
}

/** How many of entries [base, base + n) hit. */
async function hits(handler, base, n) {
  let count = 0
  await each(base, base + n, async (i) => {
    if (await handler.hit(i)) count += 1
  })
  return count
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}

/** Runs `work` once: its wall time, and this process's CPU time meanwhile, in milliseconds. */
async function timed(work) {
  globalThis.gc()
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
  const cpu = process.cpuUsage()
  const start = performance.now()
  await work()
  const wall = performance.now() - start
  const used = process.cpuUsage(cpu)
  return { wall, cpu: (used.user + used.system) / 1000 }
}

const results = []
let base = 0
for (const [index, n] of sizes.entries()) {
  if (index > 0) base += sizes[index - 1]
  const row = new Map(handlers.map((handler) => [handler.name, { own: [], ownCpu: [], shared: [], sharedCpu: [], fillPerSecond: 0 }]))
  for (const handler of handlers) {
    await handler.flush()
    const start = performance.now()
    await each(base, base + n, (i) => handler.set(i))
    row.get(handler.name).fillPerSecond = n / ((performance.now() - start) / 1000)
    check((await hits(handler, base, n)) === n, `${handler.name}: all ${n} entries hit after storing them`)
  }

  for (let rep = 0; rep < ownReps; rep += 1) {
    // Spread over the entries, and never the same one twice in a size.
    const j = base + Math.floor(((rep + 0.5) * n) / ownReps)
    for (const handler of handlers) {
      check(await handler.hit(j), `${handler.name}: entry ${j} hits before invalidating ${ownTag(j)}`)
      const { wall, cpu } = await timed(() => handler.invalidate(ownTag(j)))
      row.get(handler.name).own.push(wall)
      row.get(handler.name).ownCpu.push(cpu)
      check(!(await handler.hit(j)), `${handler.name}: entry ${j} misses after invalidating ${ownTag(j)}`)
      let bystanders = 0
      for (let k = 1; k <= BYSTANDERS; k += 1) {
        if (await handler.hit(base + ((j - base + Math.floor((k * n) / (BYSTANDERS + 1))) % n))) bystanders += 1
      }
      check(bystanders === BYSTANDERS, `${handler.name}: the other entries still hit after invalidating ${ownTag(j)}`)
      await handler.set(j)
    }
  }

  for (let rep = 0; rep < sharedReps[index]; rep += 1) {
    for (const handler of handlers) {
      if (rep > 0) await each(base, base + n, (i) => handler.set(i))
      check((await hits(handler, base, n)) === n, `${handler.name}: all ${n} entries hit before invalidating ${SHARED_TAG}`)
      const { wall, cpu } = await timed(() => handler.invalidate(SHARED_TAG))
      row.get(handler.name).shared.push(wall)
      row.get(handler.name).sharedCpu.push(cpu)
      const left = await hits(handler, base, n)
      check(left === 0, `${handler.name}: all ${n} entries miss after invalidating ${SHARED_TAG} (${left} hit)`)
    }
  }

  for (const [name, measured] of row) {
    results.push({ entries: n, handler: name, ...measured })
  }
  if (!args.json) console.error(`${n} entries done`)
}

for (const handler of handlers) await handler.close()

if (args.json) {
  console.log(JSON.stringify({ results }))
} else {
  console.log(revalidateTable(results))
}
