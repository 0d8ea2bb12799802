// The failure policy, on a clock the tests drive.

import assert from 'node:assert/strict'
import { test } from 'node:test'

import { ConnectionError } from '../dist/errors.js'
import { Health, MAX_OWED_TAGS } from '../dist/health.js'

const closed = new ConnectionError('s:1', 'closed')

function health(threshold: number): Health {
  return new Health({ failureThreshold: threshold, backoffMin: 10, backoffMax: 40 })
}

test('failures that overlap count once', () => {
  const h = health(2)
  assert.equal(h.recordFailure(0, 1, closed), false)
  for (let n = 0; n < 100; n++) {
    assert.equal(h.recordFailure(0, 2, closed), false, 'started before the first was counted')
  }
  assert.equal(h.down, false)
  assert.equal(h.recordFailure(3, 4, closed), true, 'a request that started after it is a new failure')
  assert.equal(h.down, true)
})

test('a success resets the count', () => {
  const h = health(2)
  h.recordFailure(0, 1, closed)
  h.recordSuccess()
  assert.equal(h.recordFailure(2, 3, closed), false)
  assert.equal(h.snapshot().failures, 1)
})

test('a failed connect holds off the next for a growing backoff', () => {
  const h = health(10)
  h.connectFailed(0, 0, closed)
  assert.equal(h.permit(5).kind, 'wait')
  assert.equal(h.permit(10).kind, 'connect')
  h.connectFailed(10, 10, closed)
  assert.equal(h.permit(29).kind, 'wait', 'the second wait is twice the first')
  assert.equal(h.permit(30).kind, 'connect')
  h.connected()
  h.connectFailed(31, 31, closed)
  assert.equal(h.permit(41).kind, 'connect', 'a connection resets the backoff')
})

test('a down server is probed once per backoff, and recovers', () => {
  const h = health(1)
  assert.equal(h.recordFailure(0, 0, closed), true)
  assert.equal(h.permit(0).kind, 'down')
  assert.equal(h.claimProbe(5), false, 'before the backoff')
  assert.equal(h.claimProbe(10), true)
  assert.equal(h.claimProbe(10), false, 'one probe at a time')
  h.probeFailed(11, closed)
  assert.equal(h.claimProbe(30), false, 'the backoff doubled')
  assert.equal(h.claimProbe(31), true)
  assert.equal(h.recoverOrTakeOwed(), null)
  assert.equal(h.down, false)
  assert.equal(h.permit(31).kind, 'connect')
})

test('successes on old connections do not bring a down server back', () => {
  const h = health(1)
  h.recordFailure(0, 0, closed)
  h.recordSuccess()
  h.connected()
  assert.equal(h.down, true)
})

test('a missed invalidation marks down and is delivered before recovery', () => {
  const h = health(5)
  assert.equal(h.owe(['a'], 0, closed), true)
  assert.equal(h.down, true)
  assert.equal(h.oweIfDown(['b', 'a']), true)
  assert.equal(h.claimProbe(10), true)
  assert.deepEqual(h.recoverOrTakeOwed(), { tags: ['a', 'b'], flush: false })
  assert.equal(h.down, true, 'still down until the debt is paid')
  assert.equal(h.oweIfDown(['c']), true)
  assert.deepEqual(h.recoverOrTakeOwed(), { tags: ['c'], flush: false })
  assert.equal(h.recoverOrTakeOwed(), null)
  assert.equal(h.down, false)
  assert.equal(h.oweIfDown(['d']), false)
})

test('a flush is owed as a flush, and too many tags become one', () => {
  const h = health(5)
  h.owe(['a'], 0, closed)
  h.oweIfDown([])
  assert.deepEqual(h.snapshot().owesFlush, true)
  assert.equal(h.snapshot().owedTags, 0)
  const many = health(5)
  many.owe(
    Array.from({ length: MAX_OWED_TAGS }, (_, n) => String(n)),
    0,
    closed,
  )
  assert.equal(many.snapshot().owesFlush, false)
  many.oweIfDown(['0'])
  assert.equal(many.snapshot().owesFlush, false, 'a repeat costs nothing')
  many.oweIfDown(['one-more'])
  assert.equal(many.snapshot().owesFlush, true)
})

test('an undelivered debt stays owed', () => {
  const h = health(5)
  h.owe(['a'], 0, closed)
  assert.equal(h.claimProbe(10), true)
  const owed = h.recoverOrTakeOwed()
  assert.ok(owed !== null)
  h.restoreOwed(owed)
  h.probeFailed(11, closed)
  assert.equal(h.snapshot().owedTags, 1)
  assert.equal(h.down, true)
})
