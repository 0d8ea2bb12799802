/**
 * The real `tagcached` daemon as a child process, for the tests: started on
 * 127.0.0.1 port 0 (or a given port, to restart one where it was), its
 * address read from the `local_addr=` line it logs, so nothing sleeps
 * waiting for start-up; stopped by the tests, and killed when the test
 * process exits whatever happened.
 *
 * The binary is `TAGCACHED_BIN` if set, else `../target/debug/tagcached`
 * relative to `node/`, as `cargo build -p tagcached` leaves it.
 */

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

/** The longest any one test may take, milliseconds. */
export const BOUND = 30_000
/** Bound on the daemon starting or stopping, milliseconds. */
export const PROCESS_TIMEOUT = 10_000

/** The package's directory (`node/`), from `dist-test/support/` or `test/support/`. */
export const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url))
/** The repository's root. */
export const REPO_DIR = fileURLToPath(new URL('../../../', import.meta.url))

/** The daemon binary, or an error saying how to build it. */
export function daemonBinary(): string {
  const binary = process.env['TAGCACHED_BIN'] ?? fileURLToPath(new URL('../../../target/debug/tagcached', import.meta.url))
  if (!existsSync(binary)) {
    throw new Error(
      `no tagcached binary at ${binary}: run \`cargo build -p tagcached\` in the repository first ` +
        '(or point TAGCACHED_BIN at a built binary)',
    )
  }
  return binary
}

const running = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of running) {
    child.kill('SIGKILL')
  }
})

/** Flags every test daemon gets before its own: loopback only, two threads, a small budget. */
export const BASE_ARGS = ['--bind', '127.0.0.1', '--threads', '2', '--memory', '64MiB', '--log-level', 'info']

/** A running daemon. */
export class Daemon {
  /** `127.0.0.1:PORT`. */
  readonly address: string
  readonly port: number
  /** Every line it has logged. */
  readonly log: string[]
  private readonly child: ChildProcess
  private readonly exited: Promise<void>

  private constructor(child: ChildProcess, port: number, log: string[], exited: Promise<void>) {
    this.child = child
    this.port = port
    this.address = `127.0.0.1:${port}`
    this.log = log
    this.exited = exited
  }

  /** Starts the daemon with `args` after {@link BASE_ARGS}, on `port` (0: a free one). */
  static async start(args: readonly string[] = [], port = 0): Promise<Daemon> {
    const child = spawn(daemonBinary(), [...BASE_ARGS, '--port', String(port), ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    running.add(child)
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        running.delete(child)
        resolve()
      })
    })
    const log: string[] = []
    const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream })
    const bound = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`tagcached logged no address within ${PROCESS_TIMEOUT} ms:\n${log.join('\n')}`))
      }, PROCESS_TIMEOUT)
      lines.on('line', (line) => {
        log.push(line)
        const match = / local_addr=127\.0\.0\.1:(\d+)/.exec(line)
        if (match?.[1] !== undefined) {
          clearTimeout(timer)
          resolve(Number(match[1]))
        }
      })
      void exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`tagcached exited before listening:\n${log.join('\n')}`))
      })
    })
    return new Daemon(child, bound, log, exited)
  }

  /** Starts another daemon on this one's port, once this one is gone. */
  restart(args: readonly string[] = []): Promise<Daemon> {
    return Daemon.start(args, this.port)
  }

  get pid(): number {
    const pid = this.child.pid
    if (pid === undefined) {
      throw new Error('the daemon has no pid')
    }
    return pid
  }

  /** Sends `signal` and waits for the process to exit (SIGKILL after {@link PROCESS_TIMEOUT}). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!running.has(this.child)) {
      return
    }
    this.child.kill('SIGCONT')
    this.child.kill(signal)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), PROCESS_TIMEOUT)
    await this.exited
    clearTimeout(timer)
  }

  /** Kills the process at once (SIGKILL), as a crash would. */
  kill(): Promise<void> {
    return this.stop('SIGKILL')
  }

  /**
   * Freezes the process (SIGSTOP): its sockets stay open, nothing is
   * answered. Resolves once every thread of it is stopped, as
   * `/proc/<pid>/task/<tid>/stat` shows (Linux), so that no request sent
   * after this is answered until {@link resume}.
   */
  async pause(): Promise<void> {
    this.child.kill('SIGSTOP')
    const tasks = `/proc/${this.pid}/task`
    const deadline = Date.now() + PROCESS_TIMEOUT
    for (;;) {
      const states = readdirSync(tasks).map((tid) => {
        const stat = readFileSync(`${tasks}/${tid}/stat`, 'utf8')
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      })
      if (states.every((state) => state === 'T' || state === 't')) {
        return
      }
      if (Date.now() > deadline) {
        throw new Error(`tagcached not stopped after SIGSTOP: thread states ${states.join(' ')}`)
      }
      await sleep(1)
    }
  }

  /** Thaws a paused process. */
  resume(): void {
    this.child.kill('SIGCONT')
  }
}

/** Polls `condition` every few milliseconds until it holds, failing after `limit` ms. */
export async function eventually(what: string, condition: () => Promise<boolean> | boolean, limit = 10_000): Promise<void> {
  const deadline = Date.now() + limit
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`)
    }
    await sleep(10)
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
