/**
 * The Next.js proof app (`test/next-app/`) for the tests: built once with
 * its own pinned `next`, its instances run as `next start` child processes
 * on free loopback ports, and an origin server for its `fetch` page. Every
 * process started here is stopped by the tests, and killed when the test
 * process exits whatever happened.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import { PACKAGE_DIR, PROCESS_TIMEOUT } from './daemon.js'

/** The app's directory. */
export const APP_DIR = join(PACKAGE_DIR, 'test', 'next-app')
/** Next.js's command line, as the app's own `next` installs it. */
const NEXT_BIN = join(APP_DIR, 'node_modules', 'next', 'dist', 'bin', 'next')
/** Bound on `next build`, milliseconds. */
export const BUILD_TIMEOUT = 300_000

const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) {
    child.kill('SIGKILL')
  }
})

/** The environment every Next.js process of the tests gets: no telemetry, no tagcached unless given. */
function nextEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...extra }
  if (extra['TAGCACHED_SERVERS'] === undefined) {
    delete environment['TAGCACHED_SERVERS']
  }
  return environment
}

function track(child: ChildProcess): Promise<number | null> {
  running.add(child)
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      running.delete(child)
      resolve(code)
    })
  })
}

/**
 * Builds the app (`next build`), with no tagcached configured, as a CI
 * build would: the handlers then say so once and cache nothing. Resolves
 * with the build's output; rejects with it if the build fails.
 */
export async function buildApp(): Promise<string> {
  if (!existsSync(NEXT_BIN)) {
    throw new Error(`no Next.js in ${APP_DIR}: run \`npm ci\` there first`)
  }
  const child = spawn(process.execPath, [NEXT_BIN, 'build'], {
    cwd: APP_DIR,
    env: nextEnvironment({}),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()))
  const exited = track(child)
  const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT)
  const code = await exited
  clearTimeout(timer)
  if (code !== 0) {
    throw new Error(`next build failed (${code}):\n${output.join('')}`)
  }
  return output.join('')
}

/** A free loopback port: bound, read back and released. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** One `next start` of the app. */
export class NextInstance {
  /** Every line it has printed, stdout and stderr. */
  readonly log: string[]
  readonly name: string
  readonly port: number
  private readonly child: ChildProcess
  private readonly exited: Promise<number | null>

  private constructor(name: string, port: number, child: ChildProcess, log: string[], exited: Promise<number | null>) {
    this.name = name
    this.port = port
    this.child = child
    this.log = log
    this.exited = exited
  }

  /**
   * Starts instance `name` on `port` with `environment` (TAGCACHED_SERVERS,
   * RENDER_LOG, ...), resolving once Next.js says it is ready.
   */
  static async start(name: string, port: number, environment: Record<string, string>): Promise<NextInstance> {
    const child = spawn(process.execPath, [NEXT_BIN, 'start', '--hostname', '127.0.0.1', '--port', String(port)], {
      cwd: APP_DIR,
      env: nextEnvironment({ ...environment, INSTANCE: name }),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const exited = track(child)
    const log: string[] = []
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`next start (${name}) not ready within ${PROCESS_TIMEOUT} ms:\n${log.join('\n')}`))
      }, PROCESS_TIMEOUT)
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
          log.push(line)
          if (/Ready in/.test(line)) {
            clearTimeout(timer)
            resolve()
          }
        })
      }
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`next start (${name}) exited (${code}) before it was ready:\n${log.join('\n')}`))
      })
    })
    return new NextInstance(name, port, child, log, exited)
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** The lines it printed that match `pattern`. */
  lines(pattern: RegExp): string[] {
    return this.log.filter((line) => pattern.test(line))
  }

  /** Stops it (SIGTERM, SIGKILL after {@link PROCESS_TIMEOUT}) and waits for it to exit. */
  async stop(): Promise<void> {
    if (!running.has(this.child)) {
      return
    }
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), PROCESS_TIMEOUT)
    await this.exited
    clearTimeout(timer)
  }
}

/** An HTTP origin on loopback that answers `{ "fetch": N }`, N counting its requests. */
export class Origin {
  fetches = 0
  private readonly server: Server

  private constructor(server: Server) {
    this.server = server
  }

  static async start(): Promise<Origin> {
    let origin: Origin | null = null
    const server = createServer((_request, response) => {
      if (origin !== null) {
        origin.fetches += 1
      }
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify({ fetch: origin?.fetches ?? 0 }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = new Origin(server)
    return origin
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
