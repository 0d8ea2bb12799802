// The render counter: every render of something cached records itself here.
// Its id names the instance, its process and a per-process count, so a page
// shows which render it is; RENDER_LOG (a file all instances append to, one
// line per render) lets the test count renders across instances.
import { appendFileSync } from 'node:fs'

const counter = Symbol.for('next-app.renders')

export function recordRender(what) {
  globalThis[counter] = (globalThis[counter] ?? 0) + 1
  const id = `${process.env.INSTANCE ?? 'build'}-${process.pid}-${globalThis[counter]}`
  if (process.env.RENDER_LOG) {
    appendFileSync(process.env.RENDER_LOG, `${what} ${id}\n`)
  }
  return id
}
