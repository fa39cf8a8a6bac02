import type { RandomSource } from './types.js'

/**
 * The production random source: `crypto.getRandomValues`, unbiased by rejection
 * sampling. Revalidation picks and replacement choices must not be predictable to a peer.
 */
export function cryptoRandom (): RandomSource {
  const word = new Uint32Array(1)
  return {
    int (n: number): number {
      // reject the top partial range so every residue is equally likely
      const limit = Math.floor(0x100000000 / n) * n
      for (;;) {
        globalThis.crypto.getRandomValues(word)
        const value = word[0] as number
        if (value < limit) {
          return value % n
        }
      }
    },
    bytes (n: number): Uint8Array {
      return globalThis.crypto.getRandomValues(new Uint8Array(n))
    }
  }
}

/**
 * A deterministic random source (mulberry32) for tests, benchmarks and simulations:
 * the same seed gives the same sequence.
 */
export function seededRandom (seed: number): RandomSource {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000
  }
  return {
    int: (n: number) => Math.floor(next() * n),
    bytes: (n: number) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256))
  }
}

/**
 * `count` distinct items of `items` chosen uniformly (a partial Fisher–Yates shuffle of
 * `items`, which it reorders).
 */
export function sample<T> (items: T[], count: number, random: RandomSource): T[] {
  const n = Math.max(0, Math.min(Math.floor(count), items.length))
  for (let i = 0; i < n; i++) {
    const j = i + random.int(items.length - i)
    const pick = items[j] as T
    items[j] = items[i] as T
    items[i] = pick
  }
  return items.slice(0, n)
}
