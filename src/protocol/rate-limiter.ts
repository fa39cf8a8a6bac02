import { InvalidParametersError } from '@libp2p/interface'

/**
 * Inbound request budgets: a token bucket per requesting peer and one for the whole
 * node. geth's discv4 has none (UDP packets are cheap to drop); a libp2p stream is not,
 * so a flood from one peer must be refused before it is read, and must not use up the
 * budget of everyone else.
 */

/** One token bucket: `burst` tokens at most, refilled at `perSecond`. */
export interface TokenBucketInit {
  /** Tokens when full: the requests allowed back to back. */
  burst: number
  /** Tokens added per second. */
  perSecond: number
}

/** Rate-limit settings of the server. */
export interface RateLimitInit {
  /** Each peer's budget. @default { burst: 64, perSecond: 16 } */
  perPeer?: TokenBucketInit
  /** The whole node's budget, shared by all peers. @default { burst: 2048, perSecond: 1024 } */
  global?: TokenBucketInit
  /** How many peers' buckets are kept; the least recently seen is dropped first. @default 4096 */
  maxPeers?: number
  /** A clock in milliseconds, for tests. @default Date.now */
  now?(): number
}

/** The default per-peer budget: a refresh of 21 lookups and its pings fit in the burst. */
export const DEFAULT_PER_PEER: TokenBucketInit = { burst: 64, perSecond: 16 }
/** The default node-wide budget. */
export const DEFAULT_GLOBAL: TokenBucketInit = { burst: 2048, perSecond: 1024 }
/** The default number of per-peer buckets kept. */
export const DEFAULT_MAX_PEERS = 4096

/** What `RateLimiter.take` decided. */
export type RateDecision = 'ok' | 'peer' | 'global'

interface Bucket {
  tokens: number
  updatedAt: number
}

/**
 * A per-peer and a global token bucket. A request costs one token from both; a peer over
 * its own budget is refused without touching the global one, so a flooder cannot spend
 * everyone's budget, only its own.
 */
export class RateLimiter {
  private readonly perPeer: TokenBucketInit
  private readonly globalInit: TokenBucketInit
  private readonly maxPeers: number
  private readonly now: () => number
  private readonly global: Bucket
  // BOUNDED: ≤ maxPeers entries; insertion order is recency order, the oldest is evicted.
  // Evicting a peer hands it a full bucket again, but only after maxPeers other peers
  // were seen since, and the global bucket still bounds what they all cost together.
  private readonly peers = new Map<string, Bucket>()

  constructor (init: RateLimitInit = {}) {
    this.perPeer = validBucket(init.perPeer ?? DEFAULT_PER_PEER)
    this.globalInit = validBucket(init.global ?? DEFAULT_GLOBAL)
    this.maxPeers = Math.max(1, init.maxPeers ?? DEFAULT_MAX_PEERS)
    this.now = init.now ?? Date.now
    this.global = { tokens: this.globalInit.burst, updatedAt: this.now() }
  }

  /** Takes one token for a request from `peer`: `'ok'`, or which budget refused it. */
  take (peer: string): RateDecision {
    const now = this.now()
    let bucket = this.peers.get(peer)
    if (bucket == null) {
      bucket = { tokens: this.perPeer.burst, updatedAt: now }
      if (this.peers.size >= this.maxPeers) {
        const oldest = this.peers.keys().next()
        if (oldest.done !== true) {
          this.peers.delete(oldest.value)
        }
      }
    } else {
      // re-insert to mark it most recently seen
      this.peers.delete(peer)
    }
    this.peers.set(peer, bucket)
    refill(bucket, this.perPeer, now)
    if (bucket.tokens < 1) {
      return 'peer'
    }
    refill(this.global, this.globalInit, now)
    if (this.global.tokens < 1) {
      return 'global'
    }
    bucket.tokens -= 1
    this.global.tokens -= 1
    return 'ok'
  }

  /** How many peers' buckets are held. */
  get size (): number {
    return this.peers.size
  }
}

function refill (bucket: Bucket, init: TokenBucketInit, now: number): void {
  const elapsed = Math.max(0, now - bucket.updatedAt)
  bucket.tokens = Math.min(init.burst, bucket.tokens + (elapsed * init.perSecond) / 1000)
  bucket.updatedAt = now
}

function validBucket (init: TokenBucketInit): TokenBucketInit {
  if (!(init.burst >= 1) || !(init.perSecond >= 0)) {
    throw new InvalidParametersError(`a token bucket needs burst ≥ 1 and perSecond ≥ 0, got ${init.burst} / ${init.perSecond}`)
  }
  return init
}
