import { MAX_ANNOUNCED_PEERS } from '../constants.js'
import type { TableNode } from '../table/types.js'
import type { Logger, PeerInfo, PeerStore } from '@libp2p/interface'

/**
 * Turns table entries into `peer` events: once per node that enters the table, and again
 * only when its addresses change; each after `peerStore.merge`, and only while `active()`.
 */
export class PeerAnnouncer {
  private readonly peerStore: PeerStore
  private readonly log: Logger
  private readonly emit: (info: PeerInfo) => void
  private readonly active: () => boolean
  // BOUNDED: ≤ MAX_ANNOUNCED_PEERS peers, the least recently announced forgotten first
  private readonly announced = new Map<string, string>()

  constructor (peerStore: PeerStore, log: Logger, emit: (info: PeerInfo) => void, active: () => boolean) {
    this.peerStore = peerStore
    this.log = log
    this.emit = emit
    this.active = active
  }

  /** Announces `node` unless it was announced with these addresses already. */
  announce (node: TableNode): void {
    const id = node.id.toString()
    const addrs = node.addrs.map(a => a.toString()).sort().join(' ')
    if (this.announced.get(id) === addrs) {
      return
    }
    this.announced.delete(id)
    this.announced.set(id, addrs)
    if (this.announced.size > MAX_ANNOUNCED_PEERS) {
      this.announced.delete(this.announced.keys().next().value as string)
    }
    const info = { id: node.id, multiaddrs: [...node.addrs] }
    this.peerStore.merge(info.id, { multiaddrs: info.multiaddrs })
      .then(() => {
        if (this.active()) {
          this.emit(info)
        }
      })
      .catch(err => { this.log.error('could not merge %p into the peer store - %e', info.id, err) })
  }
}
