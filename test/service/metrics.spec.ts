import assert from 'node:assert/strict'
import { kadDiscovery } from '../../src/index.js'
import { KadDiscovery } from '../../src/service/discovery.js'
import { captureComponents, TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST } from '../utils/network.js'
import type { KadDiscoveryComponents } from '../../src/service/discovery.js'
import type { Metrics } from '@libp2p/interface'

/** A metrics registry that keeps what it is given, so a test can read it. */
class RecordingMetrics {
  readonly calculated = new Map<string, () => unknown>()
  readonly counters = new Map<string, Record<string, number>>()
  readonly histograms = new Map<string, number[]>()

  asMetrics (): Metrics {
    const register = (name: string, options?: { calculate?: () => unknown }): any => {
      if (options?.calculate != null) {
        this.calculated.set(name, options.calculate)
        return undefined
      }
      const values: Record<string, number> = {}
      this.counters.set(name, values)
      const observed: number[] = []
      this.histograms.set(name, observed)
      return {
        increment: (v: Record<string, number | true> | number = 1) => {
          if (typeof v === 'number') {
            values.value = (values.value ?? 0) + v
            return
          }
          for (const [k, n] of Object.entries(v)) values[k] = (values[k] ?? 0) + (n === true ? 1 : n)
        },
        observe: (n: number) => { observed.push(n) },
        timer: () => { const t = Date.now(); return () => { observed.push((Date.now() - t) / 1000) } },
        update: () => {},
        decrement: () => {},
        reset: () => {}
      }
    }
    return {
      registerMetric: register,
      registerMetricGroup: register,
      registerCounter: register,
      registerCounterGroup: register,
      registerHistogram: register,
      registerHistogramGroup: register,
      registerSummary: register,
      registerSummaryGroup: register,
      trackMultiaddrConnection: () => {},
      trackProtocolStream: () => {},
      createTrackedMethod: (_n: string, fn: unknown) => fn
    } as unknown as Metrics
  }
}

describe('metrics', function () {
  this.timeout(30_000)
  const nodes = new TestNodes()
  let service: KadDiscovery | undefined
  afterEach(async () => {
    await service?.stop()
    await nodes.stop()
  })

  it('reports table size, bucket fill, replacements, revalidations, adds, lookups, requests and node database size', async () => {
    const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
    await nodes.createMany(3, { services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false }, bootnodes: [boot.getMultiaddrs()[0]!] }) } })
    const host = await nodes.create({ services: { capture: captureComponents() } })
    const recording = new RecordingMetrics()
    // libp2p's components object is a proxy: name what the service uses
    const components = host.services.capture.components as unknown as KadDiscoveryComponents
    const { peerId, registrar, connectionManager, peerStore, datastore, logger, events } = components
    service = new KadDiscovery({ peerId, registrar, connectionManager, peerStore, datastore, logger, events, metrics: recording.asMetrics() }, {
      ...FAST, autoDial: { enabled: false }, bootnodes: [boot.getMultiaddrs()[0]!]
    })
    await service.start()
    await service.afterStart()
    await service.refresh()
    await waitFor(() => (recording.counters.get('libp2p_kad_discovery_revalidations_total')?.alive ?? 0) > 0, 'a revalidation', 10_000)
    await service.lookup(new Uint8Array(32))

    assert.equal(recording.calculated.get('libp2p_kad_discovery_table_size')?.(), service.size)
    const fill = recording.calculated.get('libp2p_kad_discovery_bucket_fill')?.() as Record<string, number>
    assert.equal(Object.values(fill).reduce((a, b) => a + b, 0), service.size)
    assert.equal(typeof recording.calculated.get('libp2p_kad_discovery_replacements')?.(), 'number')
    assert.equal(typeof await recording.calculated.get('libp2p_kad_discovery_node_db_size')?.(), 'number')
    assert.ok((recording.counters.get('libp2p_kad_discovery_adds_total')?.added ?? 0) >= 1)
    assert.ok((recording.histograms.get('libp2p_kad_discovery_lookup_seconds')?.length ?? 0) >= 2)
    const client = recording.counters.get('libp2p_kad_discovery_client_events_total') ?? {}
    assert.ok((client['sent.FIND_NODE'] ?? 0) > 0 && (client['sent.PING'] ?? 0) > 0)
    assert.ok(recording.counters.has('libp2p_kad_discovery_server_events_total'))
    assert.ok(recording.counters.has('libp2p_kad_discovery_evictions_total'))
  })
})
