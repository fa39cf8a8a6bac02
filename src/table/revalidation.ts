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
 * (least recently live) entry is due for a ping.
 */
export function pickBucketToRevalidate (buckets: Bucket[], random: RandomSource): Bucket | undefined {
  const nonEmpty = buckets.filter(b => b.entries.length > 0)
  return nonEmpty.length === 0 ? undefined : nonEmpty[random.int(nonEmpty.length)]
}

/**
 * Port of geth `Table.nextRevalidateTime`: the delay before the next revalidation, uniform
 * in `[0, interval)`, so a peer cannot predict when it will be checked.
 */
export function nextRevalidateDelay (interval: number, random: RandomSource): number {
  return random.int(Math.max(1, Math.floor(interval)))
}
