import { TimeoutError } from '@libp2p/interface'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { MAX_ADDRS_PER_PEER } from './convert.js'
import { deadline, nextEvent } from './deadline.js'
import { checkRelayAddr, ipOf, relayPeerOf } from './relay.js'
import type { RelayPeer } from './relay.js'
import type { Connection, IdentifyResult, Libp2pEvents, PeerId, PeerStore, TypedEventTarget } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** How long a requester's addresses are reused before the peer store is read again. */
export const CONTACT_ADDRS_TTL = 10_000
/** How many requesters' addresses are remembered. */
export const CONTACT_ADDRS_CACHE_SIZE = 1024

/** What `ContactAddresses` reads. */
export interface ContactAddressesInit {
  /** Where identify writes a peer's listen addresses. */
  peerStore: PeerStore
  /** libp2p's event bus, for `peer:identify`; without it nobody is waited for. */
  events?: TypedEventTarget<Libp2pEvents>
  /** How long to wait for identify of a requester the peer store does not know yet. */
  identifyTimeout: number
  /** A clock in milliseconds. @default Date.now */
  now?(): number
}

interface Cached {
  addrs: Multiaddr[]
  at: number
}

/**
 * Where a requester can be reached, as the server reports it: its listen addresses from
 * the peer store (identify writes them), of those with an IP only the ones at the IP its
 * connection comes from (no reflection: nobody can point us at a third party), of those
 * without one the ones the relay rules let its connection carry (`checkRelayAddr`: a
 * memory-transport address only over an in-process connection, a local DNS name only
 * from a loopback or LAN host). A peer store read per request
 * cost more than the rest of answering a PING, so an answer is reused for a few seconds.
 */
export class ContactAddresses {
  private readonly init: ContactAddressesInit
  private readonly now: () => number
  // BOUNDED: ≤ CONTACT_ADDRS_CACHE_SIZE entries, none kept long past CONTACT_ADDRS_TTL;
  // insertion order is age, the oldest goes first
  private readonly cache = new Map<string, Cached>()
  // BOUNDED: one per requester whose identify is awaited, removed when it settles
  private readonly identifyWaits = new Map<string, Promise<void>>()

  constructor (init: ContactAddressesInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  /**
   * The addresses to report for the peer at the other end of `connection`; empty when
   * none is usable. Waits (at most `identifyTimeout`, or until `signal` aborts) for identify
   * when the peer store has nothing usable yet, as on a connection opened for the request.
   */
  async of (connection: Connection, signal: AbortSignal): Promise<Multiaddr[]> {
    const peer = connection.remotePeer
    const from = relayPeerOf(connection.remoteAddr)
    const key = `${peer.toString()} ${from.ip?.join('.') ?? (from.inProcess ? 'memory' : '')}`
    const cached = this.cache.get(key)
    if (cached != null && this.now() - cached.at < CONTACT_ADDRS_TTL) {
      return cached.addrs
    }
    let addrs = await this.read(peer, from)
    if (addrs.length === 0 && this.init.events != null) {
      await this.identified(peer, signal)
      addrs = await this.read(peer, from)
    }
    this.cache.delete(key)
    this.dropExpired()
    if (addrs.length > 0) {
      if (this.cache.size >= CONTACT_ADDRS_CACHE_SIZE) {
        const oldest = this.cache.keys().next()
        if (oldest.done !== true) {
          this.cache.delete(oldest.value)
        }
      }
      this.cache.set(key, { addrs, at: this.now() })
    }
    return addrs
  }

  /**
   * Forgets the answers no request may reuse any more, oldest first. The addresses came
   * from the peer store, views into buffers shared with much else: an answer kept past its
   * use kept those alive too (a third of the 8 KiB slabs alive at N = 200).
   */
  private dropExpired (): void {
    const now = this.now()
    for (const [key, cached] of this.cache) {
      if (now - cached.at < CONTACT_ADDRS_TTL) {
        return
      }
      this.cache.delete(key)
    }
  }

  private async read (peer: PeerId, from: RelayPeer): Promise<Multiaddr[]> {
    let known: Multiaddr[]
    try {
      known = (await this.init.peerStore.get(peer)).addresses.map(a => a.multiaddr)
    } catch (err: any) {
      if (err?.name !== 'NotFoundError') {
        throw err
      }
      known = []
    }
    return known.filter(ma => {
      const ip = ipOf(ma)
      if (ip != null) {
        return from.ip != null && uint8ArrayEquals(ip, from.ip)
      }
      return checkRelayAddr(from, ma) == null
    }).slice(0, MAX_ADDRS_PER_PEER)
  }

  /** Resolves once `peer:identify` for `peer` fires, after `identifyTimeout`, or on abort. */
  private async identified (peer: PeerId, signal: AbortSignal): Promise<void> {
    const key = peer.toString()
    let wait = this.identifyWaits.get(key)
    if (wait == null) {
      wait = waitForIdentify(this.init.events, peer, this.init.identifyTimeout, signal)
        .finally(() => { this.identifyWaits.delete(key) })
      this.identifyWaits.set(key, wait)
    }
    await wait
  }
}

async function waitForIdentify (events: TypedEventTarget<Libp2pEvents> | undefined, peer: PeerId, ms: number, stop: AbortSignal): Promise<void> {
  if (events == null) {
    return
  }
  const limit = deadline(ms, () => new TimeoutError('identify did not finish'), stop)
  try {
    await nextEvent([events], 'peer:identify', limit.signal, (evt: CustomEvent<IdentifyResult>) => evt.detail.peerId.equals(peer))
  } finally {
    limit.clear()
  }
}
