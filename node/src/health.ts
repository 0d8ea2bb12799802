/**
 * Whether a server is usable: failure counting, marking down, backoff, and
 * the invalidations a server still owes. The same policy as the Rust
 * client's `health.rs`.
 *
 * **Counting.** A failure is a connect that failed, or a request that
 * failed because the server could not be used (the connection broke, the
 * request timed out: {@link TagcachedError.unavailable}). Failures that
 * overlap count once: a failure counts only if its request *started after*
 * the last counted failure, so the hundreds of requests in flight on a
 * connection that breaks are one failure, while a server that keeps timing
 * out adds one per timeout period. Any success resets the count.
 *
 * **Down.** At `failureThreshold` consecutive failures the server is marked
 * down: its connections are dropped, its reads miss and its writes fail at
 * once, and no connection is tried before a backoff passes. Then one probe,
 * started by the first request after the backoff, reconnects; success marks
 * it up, failure doubles the backoff up to its maximum. A failed connect
 * below the threshold also holds off the next attempt for the current
 * backoff, so a server that refuses connections is not hammered by every
 * waiting request.
 *
 * **Owed invalidations.** An invalidation that fails on a server because it
 * was unavailable may not have reached it, and a server that comes back
 * would then serve entries the application believes invalidated. So such a
 * server is marked down at once, whatever the count, and the tags are owed
 * to it (a soft invalidation is owed hard: missing what others serve stale
 * is never wrong): the probe that brings it back delivers them before
 * anything else may use it. Past {@link MAX_OWED_TAGS} the debt becomes a
 * FLUSH_ALL, which covers every tag.
 *
 * Every method that depends on time takes `now` (milliseconds on a
 * monotonic clock), so tests drive the clock.
 *
 * @module
 */

import type { TagcachedError } from './errors.js'

/** Tags owed to one server beyond which the debt becomes a FLUSH_ALL. */
export const MAX_OWED_TAGS = 4096

/** When to mark a server down and how long to wait before retrying it. */
export interface HealthPolicy {
  /** Consecutive failures that mark a server down; at least 1. */
  readonly failureThreshold: number
  /** The first wait before retrying, milliseconds. */
  readonly backoffMin: number
  /** The longest wait before retrying, milliseconds. */
  readonly backoffMax: number
}

/** What a recovering server must be sent before it is used again. */
export interface Owed {
  /** Tags whose invalidation it may have missed. */
  readonly tags: readonly string[]
  /** Whether it must be flushed instead (which covers every tag). */
  readonly flush: boolean
}

/** May a connection be opened now? */
export type Permit =
  | { readonly kind: 'connect' }
  | { readonly kind: 'wait'; readonly error: TagcachedError }
  | { readonly kind: 'down' }

/** A point-in-time view of a server's health. */
export interface HealthSnapshot {
  readonly down: boolean
  readonly failures: number
  readonly owedTags: number
  readonly owesFlush: boolean
  readonly lastError: TagcachedError | null
}

/** The health of one server. */
export class Health {
  private failures = 0
  /** When the last counted failure was recorded. */
  private lastCounted: number | null = null
  private isDown = false
  /** No connection may be opened before this. */
  private retryAt: number | null = null
  /** The wait to apply at the next failed attempt. */
  private backoff: number
  /** A probe has been claimed and has not finished. */
  private probing = false
  private lastError: TagcachedError | null = null
  private owedTags = new Set<string>()
  private owesFlush = false

  constructor(private readonly policy: HealthPolicy) {
    this.backoff = policy.backoffMin
  }

  /** Whether the server is marked down. */
  get down(): boolean {
    return this.isDown
  }

  private markDown(now: number): void {
    this.isDown = true
    this.probing = false
    this.retryAt = now + this.backoff
    this.backoff = this.nextBackoff(this.backoff)
  }

  private nextBackoff(backoff: number): number {
    return Math.min(backoff * 2, this.policy.backoffMax)
  }

  /** A request succeeded. Ignored while down: only a probe brings a server back. */
  recordSuccess(): void {
    if (!this.isDown) {
      this.failures = 0
      this.lastCounted = null
    }
  }

  /**
   * A request that started at `started` failed with `error`, which the
   * caller guarantees is unavailable. Returns whether this marked the
   * server down (the caller then drops its connections).
   */
  recordFailure(started: number, now: number, error: TagcachedError): boolean {
    if (this.isDown) {
      return false
    }
    this.lastError = error
    if (this.lastCounted !== null && started <= this.lastCounted) {
      return false
    }
    this.failures += 1
    this.lastCounted = now
    if (this.failures >= Math.max(1, this.policy.failureThreshold)) {
      this.markDown(now)
      return true
    }
    return false
  }

  /** Whether a connection may be opened now. */
  permit(now: number): Permit {
    if (this.isDown) {
      return { kind: 'down' }
    }
    if (this.retryAt !== null && this.lastError !== null && now < this.retryAt) {
      return { kind: 'wait', error: this.lastError }
    }
    return { kind: 'connect' }
  }

  /** A connect that started at `started` failed. Holds off the next attempt; returns whether the server is now down. */
  connectFailed(started: number, now: number, error: TagcachedError): boolean {
    const marked = this.recordFailure(started, now, error)
    if (!marked && !this.isDown) {
      this.retryAt = now + this.backoff
      this.backoff = this.nextBackoff(this.backoff)
    }
    return marked
  }

  /** A connection opened: the server answers. Ignored while down. */
  connected(): void {
    if (!this.isDown) {
      this.failures = 0
      this.lastCounted = null
      this.retryAt = null
      this.backoff = this.policy.backoffMin
      this.lastError = null
    }
  }

  /** Claims the probe of a down server if its backoff has passed and no probe runs. */
  claimProbe(now: number): boolean {
    const due = this.retryAt === null || now >= this.retryAt
    if (this.isDown && due && !this.probing) {
      this.probing = true
      return true
    }
    return false
  }

  /** The claimed probe failed: wait longer before the next. */
  probeFailed(now: number, error: TagcachedError): void {
    this.probing = false
    this.retryAt = now + this.backoff
    this.backoff = this.nextBackoff(this.backoff)
    this.lastError = error
  }

  /**
   * The claimed probe reached the server. If it owes nothing, marks it up
   * and returns `null`; otherwise returns the debt, now the probe's to
   * deliver before asking again.
   */
  recoverOrTakeOwed(): Owed | null {
    if (this.owesFlush || this.owedTags.size > 0) {
      const owed: Owed = { tags: [...this.owedTags], flush: this.owesFlush }
      this.owedTags = new Set()
      this.owesFlush = false
      return owed
    }
    this.isDown = false
    this.probing = false
    this.failures = 0
    this.lastCounted = null
    this.retryAt = null
    this.backoff = this.policy.backoffMin
    this.lastError = null
    return null
  }

  /** The probe could not deliver `owed`: keep it owed. */
  restoreOwed(owed: Owed): void {
    if (owed.flush) {
      this.oweFlush()
    } else {
      this.addTags(owed.tags)
    }
  }

  /**
   * If the server is down, records the invalidation of `tags` (empty: a
   * FLUSH_ALL) as owed and returns `true`: it must not be sent. Otherwise
   * returns `false`.
   */
  oweIfDown(tags: readonly string[]): boolean {
    if (!this.isDown) {
      return false
    }
    this.addInvalidation(tags)
    return true
  }

  /**
   * An invalidation of `tags` (empty: a FLUSH_ALL) may have missed the
   * server: owe it and mark the server down. Returns whether this marked it
   * down.
   */
  owe(tags: readonly string[], now: number, error: TagcachedError): boolean {
    this.addInvalidation(tags)
    this.lastError = error
    const marked = !this.isDown
    if (marked) {
      this.markDown(now)
    }
    return marked
  }

  /** Marks the server down now, as if it had failed. Returns whether it was up. */
  forceDown(now: number): boolean {
    const marked = !this.isDown
    if (marked) {
      this.markDown(now)
    }
    return marked
  }

  snapshot(): HealthSnapshot {
    return {
      down: this.isDown,
      failures: this.failures,
      owedTags: this.owedTags.size,
      owesFlush: this.owesFlush,
      lastError: this.lastError,
    }
  }

  private addInvalidation(tags: readonly string[]): void {
    if (tags.length === 0) {
      this.oweFlush()
    } else {
      this.addTags(tags)
    }
  }

  private oweFlush(): void {
    this.owesFlush = true
    this.owedTags = new Set()
  }

  private addTags(tags: readonly string[]): void {
    if (this.owesFlush) {
      return
    }
    for (const tag of tags) {
      if (this.owedTags.has(tag)) {
        continue
      }
      if (this.owedTags.size === MAX_OWED_TAGS) {
        this.oweFlush()
        return
      }
      this.owedTags.add(tag)
    }
  }
}
