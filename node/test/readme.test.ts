// The README's Node.js snippet ("From Node.js"), run as written against a
// real daemon, so that it cannot drift from what the package does. Each
// `console.log(...)  // text` line must print `text`.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

import { BOUND, Daemon, PACKAGE_DIR, REPO_DIR } from './support/daemon.js'

/** The body of the first code block tagged `info` after `heading` in the README. */
function readmeBlock(heading: string, info: string): string {
  const readme = readFileSync(join(REPO_DIR, 'README.md'), 'utf8')
  const at = readme.indexOf(heading)
  assert.ok(at !== -1, `README has no ${heading}`)
  const fence = `\`\`\`${info}\n`
  const start = readme.indexOf(fence, at)
  assert.ok(start !== -1, `no ${info} block after ${heading}`)
  const end = readme.indexOf('```\n', start + fence.length)
  return readme.slice(start + fence.length, end)
}

test('the README snippet of "From Node.js" runs as written and prints what it says', { timeout: BOUND }, async () => {
  const snippet = readmeBlock('## From Node.js', 'js')
  assert.match(snippet, /import \{ Client \} from 'tagcached'/)
  const expected = snippet
    .split('\n')
    .filter((line) => line.startsWith('console.log('))
    .map((line) => line.split('  // ')[1]?.trim())
  assert.ok(expected.length >= 2 && expected.every((line) => line !== undefined))
  const daemon = await Daemon.start()
  try {
    // Inside the package, so that `import 'tagcached'` resolves to this package's build.
    const script = join(PACKAGE_DIR, 'dist-test', 'readme-snippet.mjs')
    writeFileSync(script, snippet.replaceAll('127.0.0.1:11311', daemon.address))
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [script], { timeout: 10_000 }, (error, out, err) => {
        if (error !== null) {
          reject(new Error(`the snippet failed: ${error.message}\n${err}`))
        } else {
          resolve(out)
        }
      })
    })
    assert.deepEqual(stdout.trimEnd().split('\n'), expected)
  } finally {
    await daemon.stop()
  }
})
