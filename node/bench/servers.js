/**
 * The servers a benchmark runs against, each started fresh on a free
 * loopback port and stopped at the end: the tagcached daemon
 * (`TAGCACHED_BIN`, else `target/release/tagcached` of this repository),
 * `redis-server` and `memcached` from the PATH.
 *
 * A server is ready when it answers on its port (tagcached: when it logs
 * the address it bound), never after a fixed sleep; every wait is bounded.
 */

import { spawn, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** Bound on a server starting or stopping, milliseconds. */
const PROCESS_TIMEOUT = 10_000

const running = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** The tagcached binary, or an error saying how to build it. */
export function tagcachedBinary() {
  const binary = process.env.TAGCACHED_BIN ?? fileURLToPath(new URL('../../target/release/tagcached', import.meta.url))
  if (!existsSync(binary)) {
    throw new Error(`no tagcached binary at ${binary}: run \`cargo build --release -p tagcached\` first, or set TAGCACHED_BIN`)
  }
  return binary
}

/** A running server: its address, its pid (for CPU time), and how it was started. */
export class Server {
  constructor(name, child, port, command) {
    this.name = name
    this.child = child
    this.port = port
    this.address = `127.0.0.1:${port}`
    this.command = command
    this.exited = new Promise((resolve) => child.once('exit', resolve))
  }

  get pid() {
    return this.child.pid
  }

  /** CPU seconds (user + system) the server has used so far. */
  cpuSeconds() {
    const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    return (Number(fields[11]) + Number(fields[12])) / clockTicks()
  }

  /** SIGTERM, then SIGKILL if it has not exited within the bound. */
  async stop() {
    if (!running.has(this.child)) return
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), PROCESS_TIMEOUT)
    await this.exited
    clearTimeout(timer)
  }
}

let ticks = null
function clockTicks() {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
  return ticks
}

function track(child) {
  running.add(child)
  child.once('exit', () => running.delete(child))
  return child
}

/** tagcached on 127.0.0.1, port 0, ready once it logs `local_addr=`; `threads` null: its default. */
export async function startTagcached({ threads = null, name = 'tagcached' } = {}) {
  const args = ['--bind', '127.0.0.1', '--port', '0', '--memory', '1GiB', '--log-level', 'info']
  if (threads !== null) args.push('--threads', String(threads))
  const binary = tagcachedBinary()
  const child = track(spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] }))
  const log = []
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`tagcached logged no address within ${PROCESS_TIMEOUT} ms:\n${log.join('\n')}`))
    }, PROCESS_TIMEOUT)
    createInterface({ input: child.stderr }).on('line', (line) => {
      if (log.length < 100) log.push(line)
      const match = / local_addr=127\.0\.0\.1:(\d+)/.exec(line)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`tagcached exited before listening:\n${log.join('\n')}`))
    })
  })
  const shown = args.map((arg, i) => (args[i - 1] === '--port' ? String(port) : arg))
  return new Server(name, child, port, `tagcached ${shown.join(' ')}`)
}

/** redis-server on a free loopback port, without persistence. */
export async function startRedis() {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning']
  const child = track(spawn('redis-server', args, { stdio: 'ignore' }))
  await answers(port, child, 'redis-server')
  return new Server('redis', child, port, `redis-server ${args.map((arg) => (arg === '' ? "''" : arg)).join(' ')}`)
}

/** memcached on a free loopback port: 2 threads (the machine's cores), 1 GiB. */
export async function startMemcached() {
  const port = await freePort()
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-t', '2', '-m', '1024']
  if (process.getuid?.() === 0) args.push('-u', 'root')
  const child = track(spawn('memcached', args, { stdio: 'ignore' }))
  await answers(port, child, 'memcached')
  return new Server('memcached', child, port, `memcached ${args.join(' ')}`)
}

/** A port free on 127.0.0.1 a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/** Resolves once `port` accepts a connection; rejects if `child` exits or the bound passes. */
async function answers(port, child, what) {
  const deadline = Date.now() + PROCESS_TIMEOUT
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  for (let attempt = 0; attempt < 1000; attempt += 1) {
    if (exited) throw new Error(`${what} exited before listening on ${port}`)
    if (await connects(port)) return
    if (Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  child.kill('SIGKILL')
  throw new Error(`${what} did not listen on ${port} within ${PROCESS_TIMEOUT} ms`)
}

function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** The servers' versions, as each reports it, and the tagcached binary's hash. */
export function serverVersions() {
  const first = (command, args) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).split('\n')[0].trim()
    } catch (error) {
      return `unknown (${error.message})`
    }
  }
  const binary = tagcachedBinary()
  const sha = createHash('sha256').update(readFileSync(binary)).digest('hex').slice(0, 12)
  return {
    tagcached: `${first(binary, ['--version'])} (sha256 ${sha})`,
    redis: first('redis-server', ['--version']),
    memcached: first('memcached', ['-V']),
  }
}
