import type { ComponentLogger, Libp2pEvents, Metrics, PeerId, PeerStore, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Datastore } from 'interface-datastore'

/** What the service uses of libp2p; tests can pass a small object. */
export interface KadDiscoveryComponents {
  /** The local node's id. */
  peerId: PeerId
  /** Registers the protocol handler. */
  registrar: Registrar
  /** Opens request streams and auto-dials. */
  connectionManager: ConnectionManager
  /** Where found peers are merged before they are announced; requesters' listen addresses. */
  peerStore: PeerStore
  /** The node database's home unless `init.datastore` is given. */
  datastore: Datastore
  /** Component loggers, under `libp2p:kad-discovery`. */
  logger: ComponentLogger
  /** libp2p's events: the auto-dialer wakes when a connection closes. */
  events: TypedEventTarget<Libp2pEvents>
  /** Metrics, when the node has them. */
  metrics?: Metrics
}
