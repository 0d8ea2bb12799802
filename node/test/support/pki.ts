/**
 * Certificates for the TLS tests, made at test time by the repository's
 * `tagcached-test-pki` helper (rcgen, Rust): Node can make keys but not
 * X.509 certificates, and the helper needs nothing the Rust build does not
 * already have (no `openssl` on the machine). The binary is
 * `TAGCACHED_TEST_PKI_BIN` if set, else `../target/debug/tagcached-test-pki`
 * relative to `node/`, as `cargo build -p tagcached-tests --bin
 * tagcached-test-pki` (scripts/test-all) leaves it. The files go to a
 * temporary directory that {@link Pki.remove} deletes.
 */

import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The PEM files the helper writes, by name. */
export class Pki {
  readonly dir: string

  private constructor(dir: string) {
    this.dir = dir
  }

  /** A new CA, server certificate (`localhost`, `127.0.0.1`) and client certificate. */
  static make(): Pki {
    const binary =
      process.env['TAGCACHED_TEST_PKI_BIN'] ??
      fileURLToPath(new URL('../../../target/debug/tagcached-test-pki', import.meta.url))
    if (!existsSync(binary)) {
      throw new Error(
        `no tagcached-test-pki at ${binary}: run \`cargo build -p tagcached-tests --bin tagcached-test-pki\` ` +
          'in the repository first (or point TAGCACHED_TEST_PKI_BIN at it)',
      )
    }
    const dir = mkdtempSync(join(tmpdir(), 'tagcached-node-tls-'))
    execFileSync(binary, [dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 10_000 })
    return new Pki(dir)
  }

  /** The path of `name` (`ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`, `other-ca.pem`). */
  path(name: string): string {
    return join(this.dir, name)
  }

  /** The contents of `name`. */
  read(name: string): Buffer {
    return readFileSync(this.path(name))
  }

  /** Deletes the files. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}
