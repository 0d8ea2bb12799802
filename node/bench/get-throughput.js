/**
 * One closed-loop `get` run of one client (see `clients.js`) against one
 * server, in a process of its own so that no run inherits another's heap
 * or compiled code: `--concurrency` loops each await one `get` of a key
 * drawn uniformly from `--keys` keys, for a warm-up, then for `--duration`
 * seconds measured. Every key holds a `--value-size`-byte value (stored
 * first with `--prefill`); a miss or a wrong value counts as an error.
 *
 * Prints one JSON line: requests, ops/s, latency percentiles (µs, from
 * the call to its promise settling), misses and errors, this process's CPU
 * time over the measured window as a share of one core (Node runs the
 * client on one thread), and the server's (with `--server-pid`).
 *
 * Usage: node get-throughput.js --client tagcached|memjs|ioredis|node-redis --server HOST:PORT
 *   [--keys 100000] [--value-size 100] [--concurrency 50] [--duration 5] [--warmup 1] [--prefill] [--server-pid PID]
 */

import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'

import { CLIENTS } from './clients.js'
import { Histogram } from './stats.js'

const { values: args } = parseArgs({
  options: {
    client: { type: 'string' },
    server: { type: 'string' },
    keys: { type: 'string', default: '100000' },
    'value-size': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '50' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    prefill: { type: 'boolean', default: false },
    'server-pid': { type: 'string' },
  },
})

const connect = CLIENTS[args.client]
if (connect === undefined || args.server === undefined) {
  throw new Error(`--client is one of ${Object.keys(CLIENTS).join(', ')}, and --server HOST:PORT is required`)
}
const keyCount = Number(args.keys)
const valueSize = Number(args['value-size'])
const concurrency = Number(args.concurrency)
const durationMs = Number(args.duration) * 1000
const warmupMs = Number(args.warmup) * 1000

/** 32-byte keys, as the Rust benches use. */
const keys = Array.from({ length: keyCount }, (_, i) => `key:${String(i).padStart(28, '0')}`)
const value = Buffer.alloc(valueSize, 'v')

const client = await connect(args.server)

if (args.prefill) {
  const inFlight = 256
  for (let from = 0; from < keyCount; from += inFlight) {
    const batch = keys.slice(from, from + inFlight)
    await Promise.all(batch.map((key) => client.set(key, value)))
  }
}

/** xorshift32: the same cheap, seeded draw for every client. */
function random(seed) {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state
  }
}

const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
function serverCpuSeconds() {
  if (args['server-pid'] === undefined) return NaN
  const fields = readFileSync(`/proc/${args['server-pid']}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / ticks
}

const histogram = new Histogram()
let measuring = false
let stopping = false
let requests = 0
let misses = 0
let errors = 0
let firstError = null

async function loop(seed) {
  const draw = random(seed)
  while (!stopping) {
    const key = keys[draw() % keyCount]
    const start = performance.now()
    let outcome = 'hit'
    try {
      const found = await client.get(key)
      if (found === null) outcome = 'miss'
      else if (found.length !== valueSize) outcome = 'error'
    } catch (error) {
      outcome = 'error'
      firstError ??= String(error)
    }
    if (measuring) {
      histogram.record((performance.now() - start) * 1e6)
      requests += 1
      if (outcome === 'miss') misses += 1
      else if (outcome === 'error') errors += 1
    }
  }
}

const loops = Array.from({ length: concurrency }, (_, i) => loop(0x9e3779b9 * (i + 1)))
await new Promise((resolve) => setTimeout(resolve, warmupMs))
const cpuBefore = process.cpuUsage()
const serverBefore = serverCpuSeconds()
const startedAt = performance.now()
measuring = true
await new Promise((resolve) => setTimeout(resolve, durationMs))
measuring = false
const elapsedMs = performance.now() - startedAt
const cpu = process.cpuUsage(cpuBefore)
const serverAfter = serverCpuSeconds()
stopping = true
await Promise.all(loops)
await client.close()

console.log(
  JSON.stringify({
    client: args.client,
    concurrency,
    requests,
    opsPerSecond: requests / (elapsedMs / 1000),
    p50Us: histogram.percentile(50) / 1000,
    p99Us: histogram.percentile(99) / 1000,
    p999Us: histogram.percentile(99.9) / 1000,
    misses,
    errors,
    firstError,
    clientCpu: (cpu.user + cpu.system) / 1000 / elapsedMs,
    serverCpu: (serverAfter - serverBefore) / (elapsedMs / 1000),
  }),
)
