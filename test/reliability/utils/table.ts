import { resolveInit } from '../../../src/service/init.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { Table } from '../../../src/table/table.js'
import type { PeerId } from '@libp2p/interface'

/** The service's table, which the public API shows only as copies without IP counts. */
export function tableOf (discovery: KadDiscovery): Table {
  return (discovery as unknown as { table: Table }).table
}

/**
 * Every way the table of `discovery` (owned by `self`) breaks its bounds: more than
 * `bucketSize` entries or `maxReplacements` replacements in a bucket, a node twice, itself,
 * a node without an address, a size that disagrees with its buckets, or a subnet over its
 * per-table or per-bucket IP limit. Empty when sound.
 */
export function tableViolations (discovery: KadDiscovery, self: PeerId, init: KadDiscoveryInit): string[] {
  const limits = resolveInit(init)
  const table = tableOf(discovery)
  const problems: string[] = []
  // BOUNDED: one call's table entries
  const seen = new Set<string>()
  let count = 0
  for (const bucket of discovery.buckets()) {
    if (bucket.entries.length > limits.bucketSize) {
      problems.push(`bucket ${bucket.index} holds ${bucket.entries.length} > ${limits.bucketSize}`)
    }
    if (bucket.replacements.length > limits.maxReplacements) {
      problems.push(`bucket ${bucket.index} keeps ${bucket.replacements.length} replacements > ${limits.maxReplacements}`)
    }
    for (const entry of bucket.entries) {
      const id = entry.id.toString()
      count++
      if (seen.has(id)) {
        problems.push(`${id} twice`)
      }
      seen.add(id)
      if (entry.id.equals(self)) {
        problems.push('the node holds itself')
      }
      if (entry.addrs.length === 0) {
        problems.push(`${id} has no address`)
      }
    }
    for (const [subnet, n] of table.bucketIpCounts(bucket.index)) {
      if (n > limits.bucketIpLimit) {
        problems.push(`bucket ${bucket.index} holds ${n} of ${subnet} > ${limits.bucketIpLimit}`)
      }
    }
  }
  if (count !== discovery.size) {
    problems.push(`size ${discovery.size} but ${count} entries`)
  }
  if (count > limits.nBuckets * limits.bucketSize) {
    problems.push(`${count} entries > ${limits.nBuckets} × ${limits.bucketSize}`)
  }
  for (const [subnet, n] of table.tableIpCounts()) {
    if (n > limits.tableIpLimit) {
      problems.push(`table holds ${n} of ${subnet} > ${limits.tableIpLimit}`)
    }
  }
  return problems
}

/**
 * The table as `id → addresses`, for comparing two moments. Addresses are compared
 * without their `/p2p` suffix: a bootnode's entry has one until the node first contacts
 * us, which is the same address.
 */
export function tableContents (discovery: KadDiscovery): Map<string, string> {
  // BOUNDED: one table's entries
  const contents = new Map<string, string>()
  for (const node of discovery.nodes()) {
    contents.set(node.id.toString(), node.multiaddrs.map(ma => ma.decapsulateCode(421).toString()).sort().join(' '))
  }
  return contents
}

/** How two table contents differ: ids gone, ids new, ids re-addressed. */
export function contentChanges (before: Map<string, string>, after: Map<string, string>): string[] {
  const changes: string[] = []
  for (const [id, addrs] of before) {
    const now = after.get(id)
    if (now == null) {
      changes.push(`${id} left`)
    } else if (now !== addrs) {
      changes.push(`${id} re-addressed from ${addrs} to ${now}`)
    }
  }
  for (const id of after.keys()) {
    if (!before.has(id)) {
      changes.push(`${id} entered`)
    }
  }
  return changes
}
