/**
 * Order statistics and number formatting shared by the benchmarks.
 */

/** The `p`-th percentile (0..100) of `values` by nearest rank: with fewer than 100 values, p99 is the largest. */
export function percentile(values, p) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]
}

export function median(values) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/**
 * Latencies in a log-linear histogram (16 buckets per power of two, so
 * within about 4%), in nanoseconds: millions of samples cost no memory and
 * no sort.
 */
export class Histogram {
  constructor() {
    this.counts = new Float64Array(64 * 16)
    this.total = 0
  }

  record(nanoseconds) {
    this.counts[bucketOf(nanoseconds)] += 1
    this.total += 1
  }

  merge(other) {
    for (let i = 0; i < this.counts.length; i += 1) this.counts[i] += other.counts[i]
    this.total += other.total
  }

  /** The `p`-th percentile, nanoseconds (the middle of its bucket). */
  percentile(p) {
    const target = Math.max(1, Math.ceil((p / 100) * this.total))
    let seen = 0
    for (let i = 0; i < this.counts.length; i += 1) {
      seen += this.counts[i]
      if (seen >= target) return middleOf(i)
    }
    return NaN
  }
}

function bucketOf(value) {
  const v = Math.max(1, Math.floor(value))
  const exponent = Math.floor(Math.log2(v))
  if (exponent < 4) return v
  const fraction = Math.floor((v / 2 ** exponent - 1) * 16)
  return exponent * 16 + fraction
}

function middleOf(bucket) {
  if (bucket < 16) return bucket
  const exponent = Math.floor(bucket / 16)
  const fraction = bucket % 16
  return 2 ** exponent * (1 + (fraction + 0.5) / 16)
}

/** `1234567.8` as `1,234,568`. */
export function thousands(value) {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-'
}

/** Milliseconds with a precision that suits their size. */
export function millis(value) {
  if (!Number.isFinite(value)) return '-'
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  return value.toFixed(2)
}
