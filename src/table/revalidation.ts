import type { Bucket } from './bucket.js'
import type { RandomSource } from './types.js'

/** What a revalidation ping changed (geth `doRevalidate`). */
export enum RevalidationOutcome {
  /** It answered: moved to the front, one more liveness check. */
  Alive = 'alive',
  /** It did not answer: a replacement took its place. */
  Replaced = 'replaced',
  /** It did not answer and no replacement could take its place: deleted. */
  Removed = 'removed',
  /** It was no longer the last entry (moved or gone meanwhile): nothing done. */
  Moved = 'moved'
}

/**
 * The choice in geth `Table.nodeToRevalidate`: a random non-empty bucket, whose last
 * (least recently live) entry is due for a ping. With `unprovenOnly`, only the buckets
 * whose last entry has passed no liveness check yet, and whose addresses no answer has
 * checked either, are drawn from.
 */
export function pickBucketToRevalidate (buckets: Bucket[], random: RandomSource, unprovenOnly = false): Bucket | undefined {
  const candidates = buckets.filter(b => {
    const last = b.last()
    return last != null && (!unprovenOnly || (last.livenessChecks === 0 && last.addrsChecked !== true))
  })
  return candidates.length === 0 ? undefined : candidates[random.int(candidates.length)]
}

/**
 * Port of geth `Table.nextRevalidateTime`: the delay before the next revalidation, uniform
 * in `[0, interval)`, so a peer cannot predict when it will be checked.
 */
export function nextRevalidateDelay (interval: number, random: RandomSource): number {
  return random.int(Math.max(1, Math.floor(interval)))
}
