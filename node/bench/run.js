/**
 * `npm run bench`: both benchmarks, each against servers it starts fresh on
 * loopback and stops at the end, printed as the Markdown of the
 * "Node.js" section of benches/BENCHMARKS.md.
 *
 * 1. `revalidate.js`: one `revalidateTag` through `tagcached/next`'s
 *    handlers (each on a tagcached daemon of its own) and through
 *    `@fortedigital/nextjs-cache-handler` (on Redis), at each size.
 * 2. `get-throughput.js`: `get` throughput of the tagcached client
 *    (daemon at its default thread count and at `--threads 1`), memjs on
 *    memcached, ioredis and node-redis on Redis; `--rounds` rounds, every
 *    run in a fresh process, the order rotating by one each round.
 *
 * Options (all optional):
 *   --only revalidate|get       one of the two
 *   --sizes 1000,10000,100000   entries cached, for 1
 *   --own-reps 20 --shared-reps 10,10,5
 *   --concurrency 1,50          requests in flight, for 2
 *   --keys 100000 --value-size 100 --duration 5 --warmup 1 --rounds 3
 *   --wait-for-load L           first wait (at most 10 minutes) for the 1-minute load average to fall below L
 *   --out FILE                  also write the Markdown there
 */

import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'

import { clientVersions, installedVersion } from './clients.js'
import { revalidateTable, throughputTable } from './report.js'
import { serverVersions, startMemcached, startRedis, startTagcached, tagcachedBinary } from './servers.js'

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    sizes: { type: 'string', default: '1000,10000,100000' },
    'own-reps': { type: 'string', default: '20' },
    'shared-reps': { type: 'string', default: '10,10,5' },
    concurrency: { type: 'string', default: '1,50' },
    keys: { type: 'string', default: '100000' },
    'value-size': { type: 'string', default: '100' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    'wait-for-load': { type: 'string' },
    out: { type: 'string' },
  },
})

/** Bound on one child run, milliseconds: a stuck client must not hang the benchmark. */
const CHILD_TIMEOUT = 15 * 60_000

/** Runs `node ARGS` in this directory; resolves with its stdout, rejects if it fails or outlives the bound. */
function node(nodeArgs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: new URL('.', import.meta.url), stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`node ${nodeArgs.join(' ')} failed (${signal ?? `exit ${code}`})`))
    })
  })
}

const load = () => os.loadavg().map((value) => value.toFixed(2)).join(' ')

const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/**
 * CPU seconds so far: the machine's busy time and its steal time (/proc/stat),
 * and this process's with its reaped children (every server and run).
 */
function cpuSeconds() {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const own = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ').slice(11, 15).map(Number)
  return {
    busy: (user + nice + system + irq + softirq) / ticks,
    steal: steal / ticks,
    own: own.reduce((sum, value) => sum + value, 0) / ticks,
  }
}

if (args['wait-for-load'] !== undefined) {
  const limit = Number(args['wait-for-load'])
  for (let waited = 0; os.loadavg()[0] >= limit && waited < 40; waited += 1) {
    console.error(`load average ${load()}: waiting for the 1-minute figure to fall below ${limit}`)
    await new Promise((resolve) => setTimeout(resolve, 15_000))
  }
}

const started = new Date()
const loadBefore = load()
const cpuBefore = cpuSeconds()
const sections = []

if (args.only === undefined || args.only === 'revalidate') {
  const incremental = await startTagcached()
  const useCache = await startTagcached()
  const redis = await startRedis()
  try {
    const out = await node([
      '--expose-gc',
      'revalidate.js',
      '--json',
      ...['--tagcached', incremental.address, '--tagcached-use-cache', useCache.address, '--redis', redis.address],
      ...['--sizes', args.sizes, '--own-reps', args['own-reps'], '--shared-reps', args['shared-reps']],
    ])
    sections.push({
      title: 'revalidate',
      servers: [`${incremental.command}   # tagcached incremental`, `${useCache.command}   # tagcached use-cache`, redis.command],
      table: revalidateTable(JSON.parse(out).results),
    })
  } finally {
    for (const server of [incremental, useCache, redis]) await server.stop()
  }
}

if (args.only === undefined || args.only === 'get') {
  const tagcachedDefault = await startTagcached()
  const tagcachedOne = await startTagcached({ threads: 1 })
  const memcached = await startMemcached()
  const redis = await startRedis()
  const threads = os.availableParallelism()
  const targets = [
    { label: `tagcached (${threads} threads, its default)`, client: 'tagcached', server: tagcachedDefault },
    { label: 'tagcached --threads 1', client: 'tagcached', server: tagcachedOne },
    { label: 'memjs → memcached', client: 'memjs', server: memcached },
    { label: 'ioredis → Redis', client: 'ioredis', server: redis },
    { label: 'node-redis → Redis', client: 'node-redis', server: redis },
  ]
  const common = ['--keys', args.keys, '--value-size', args['value-size'], '--duration', args.duration, '--warmup', args.warmup]
  const runs = []
  const filled = new Set()
  const concurrencies = args.concurrency.split(',').map(Number)
  try {
    for (let round = 0; round < Number(args.rounds); round += 1) {
      for (const concurrency of concurrencies) {
        for (let turn = 0; turn < targets.length; turn += 1) {
          const target = targets[(turn + round) % targets.length]
          const prefill = !filled.has(target.server)
          filled.add(target.server)
          const out = await node([
            'get-throughput.js',
            ...['--client', target.client, '--server', target.server.address, '--server-pid', String(target.server.pid)],
            ...['--concurrency', String(concurrency), ...common],
            ...(prefill ? ['--prefill'] : []),
          ])
          runs.push({ ...JSON.parse(out), label: target.label })
          console.error(`round ${round + 1}, concurrency ${concurrency}: ${target.label} done`)
        }
      }
    }
  } finally {
    for (const server of [tagcachedDefault, tagcachedOne, memcached, redis]) await server.stop()
  }
  sections.push({
    title: 'get',
    servers: [tagcachedDefault.command, tagcachedOne.command, memcached.command, redis.command],
    tables: concurrencies.map((concurrency) => ({
      concurrency,
      table: throughputTable(
        runs.filter((run) => run.concurrency === concurrency),
        targets,
        targets[0].label,
      ),
    })),
  })
}

const cpuAfter = cpuSeconds()
const elapsed = (Date.now() - started.getTime()) / 1000
const others = cpuAfter.busy - cpuBefore.busy - (cpuAfter.own - cpuBefore.own)
const servers = serverVersions()
const clients = clientVersions()
const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
})()
const lines = [
  `Produced by \`npm run bench\` in \`node/bench/\` on ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, at ${commit}.`,
  '',
  `- Machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Linux ${os.release()}.`,
  `  Load average ${loadBefore} before the runs, ${load()} after (the runs' own load). Over the ${Math.round(elapsed)} s of the runs,`,
  `  other processes used ${othersText(others, elapsed * os.availableParallelism())}, and the hypervisor stole ${(cpuAfter.steal - cpuBefore.steal).toFixed(1)} CPU-seconds.`,
  `- Node.js ${process.version}; tagcached (client and \`tagcached/next\`) ${clients.tagcached}, ` +
    `@fortedigital/nextjs-cache-handler ${installedVersion('@fortedigital/nextjs-cache-handler')} with next ${installedVersion('next')}, ` +
    `memjs ${clients.memjs}, ioredis ${clients.ioredis}, redis (node-redis) ${clients['node-redis']}.`,
  `- Servers: ${servers.tagcached} (\`${tagcachedBinary()}\`); ${servers.redis}; ${servers.memcached}.`,
]
for (const section of sections) {
  lines.push('', `<!-- ${section.title} -->`, '', ...section.servers.map((command) => `    ${command}`), '')
  if (section.table !== undefined) {
    lines.push(section.table)
  } else {
    for (const { concurrency, table } of section.tables) {
      lines.push(`${concurrency} in flight:`, '', table, '')
    }
  }
}
const markdown = lines.join('\n')

/**
 * Other processes' CPU time, `seconds` of the machine's `capacity`: the
 * machine's busy time (counted in ticks) less this run's own (counted per
 * process), two counts that differ by a few percent of the run's own use,
 * so a share under 5% is none that can be told.
 */
function othersText(seconds, capacity) {
  const share = seconds / capacity
  if (share < 0.05) return 'no CPU time that this count can tell (under 5% of the machine)'
  return `${seconds.toFixed(1)} CPU-seconds (${Math.round(100 * share)}% of the machine)`
}
console.log(markdown)
if (args.out !== undefined) writeFileSync(args.out, `${markdown}\n`)
