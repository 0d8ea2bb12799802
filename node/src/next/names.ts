/**
 * Next.js's keys and tags as the server takes them. A key is 1..=250 bytes
 * and a tag 1..=1024 bytes of UTF-8 without whitespace or control
 * characters (protocol.md §7, §8.1); Next.js's are neither bounded so nor
 * so restricted (a `'use cache'` key holds the function's serialized
 * arguments). Each mapping is a pure function, so every process, and every
 * handler in it, names the same key and the same tag the same way.
 *
 * @module
 */

import { createHash } from 'node:crypto'

/** The longest key the server takes by default (protocol.md §7, `max_key_length`). */
export const MAX_KEY_BYTES = 250
/** The longest tag the server takes by default (`max_tag_length`). */
export const MAX_TAG_BYTES = 1024

/**
 * The server's key for Next.js's `key` in namespace `space` (`uc` for
 * `'use cache'`, `ic` for the incremental cache), after `prefix`. A key
 * that would be too long is replaced by its SHA-256; the entry keeps the
 * original key so that a read can check it is the one it asked for.
 */
export function serverKey(prefix: string, space: string, key: string): string {
  const plain = `${prefix}${space}:${key}`
  if (Buffer.byteLength(plain) <= MAX_KEY_BYTES) {
    return plain
  }
  return `${prefix}${space}#${createHash('sha256').update(key).digest('base64url')}`
}

/** Characters a tag may not hold (and `%`, which escapes them). */
const UNSAFE = /[\s\p{Cc}%]/gu

/**
 * The server's tag for Next.js's `tag`: itself when the server takes it
 * (`posts`, `_N_T_/blog/layout`); else whitespace, control characters and
 * `%` percent-escaped; and past {@link MAX_TAG_BYTES}, a SHA-256.
 */
export function serverTag(tag: string): string {
  // `%` alone cannot come from escaping (which writes `%` and two hex
  // digits), so it stands for the empty tag.
  const escaped = tag.length === 0 ? '%' : tag.replace(UNSAFE, (character) => encodeURIComponent(character))
  if (Buffer.byteLength(escaped) <= MAX_TAG_BYTES) {
    return escaped
  }
  return `#${createHash('sha256').update(tag).digest('base64url')}`
}

/** {@link serverTag} of each of `tags`, each once. */
export function serverTags(tags: Iterable<string>): string[] {
  return [...new Set([...tags].map(serverTag))]
}
