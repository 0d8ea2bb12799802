/**
 * The benchmarks' results as Markdown tables, for benches/BENCHMARKS.md.
 */

import { median, millis, percentile, thousands } from './stats.js'

/** `revalidate.js`'s results: milliseconds per invalidation (wall, and the median CPU time of the calling process), by size and handler. */
export function revalidateTable(rows) {
  const lines = [
    '| entries | handler | own tag: median ms | p99 ms | CPU ms | shared tag: median ms | p99 ms | CPU ms | repetitions (own, shared) | stores/s (first fill) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---|---:|',
  ]
  for (const row of rows) {
    lines.push(
      `| ${thousands(row.entries)} | ${row.handler} | ${millis(median(row.own))} | ${millis(percentile(row.own, 99))} | ${millis(median(row.ownCpu))} | ` +
        `${millis(median(row.shared))} | ${millis(percentile(row.shared, 99))} | ${millis(median(row.sharedCpu))} | ` +
        `${row.own.length}, ${row.shared.length} | ${thousands(row.fillPerSecond)} |`,
    )
  }
  return lines.join('\n')
}

/**
 * `get-throughput.js`'s runs, grouped by target: the median of each figure
 * over the rounds, the spread of ops/s ((max - min) / median), and ops/s
 * relative to `reference`'s.
 */
export function throughputTable(runs, targets, reference) {
  const byTarget = new Map(targets.map((target) => [target.label, runs.filter((run) => run.label === target.label)]))
  const referenceOps = median((byTarget.get(reference) ?? []).map((run) => run.opsPerSecond))
  const lines = [
    `| client → server | ops/s | vs ${reference} | p50 µs | p99 µs | p99.9 µs | client CPU | server CPU | misses, errors | ops/s spread |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ]
  for (const target of targets) {
    const mine = byTarget.get(target.label)
    if (mine.length === 0) continue
    const figure = (name) => median(mine.map((run) => run[name]))
    const ops = mine.map((run) => run.opsPerSecond)
    const spread = (Math.max(...ops) - Math.min(...ops)) / median(ops)
    const faults = `${mine.reduce((sum, run) => sum + run.misses, 0)}, ${mine.reduce((sum, run) => sum + run.errors, 0)}`
    lines.push(
      `| ${target.label} | ${thousands(figure('opsPerSecond'))} | ${(figure('opsPerSecond') / referenceOps).toFixed(2)}× | ` +
        `${figure('p50Us').toFixed(0)} | ${figure('p99Us').toFixed(0)} | ${figure('p999Us').toFixed(0)} | ` +
        `${percent(figure('clientCpu'))} | ${percent(figure('serverCpu'))} | ${faults} | ${percent(spread)} |`,
    )
  }
  return lines.join('\n')
}

function percent(share) {
  return Number.isFinite(share) ? `${Math.round(share * 100)}%` : '-'
}
