import { parseIP } from '@chainsafe/is-ip/parse'
import {
  BUCKET_IP_LIMIT, BUCKET_SUBNET, IPV6_SUBNET, TABLE_IP_LIMIT, TABLE_SUBNET
} from '../constants.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Where a node sits for the IP limits, read from its multiaddrs (DESIGN.md §4).
 * - `ip`: the first IP component of its multiaddrs (4-in-6 addresses count as IPv4);
 * - `domain`: no IP, but a DNS name: counted under its last two labels, so names are no
 *   way around the limits;
 * - `other`: none of those but some transport (e.g. only a relay address): all such nodes
 *   share one group per protocol name, so they are limited too;
 * - `memory`: the memory transport used by tests: exempt.
 */
export type NetAddress =
  | { kind: 'ip', family: 4 | 6, bytes: Uint8Array }
  | { kind: 'domain', domain: string }
  | { kind: 'other', name: string }
  | { kind: 'memory' }

const IP4 = 4
const IP6 = 41
const DNS_CODES = new Set([53, 54, 55, 56]) // dns, dns4, dns6, dnsaddr
const MEMORY = 777

/**
 * The `NetAddress` of a node with these multiaddrs, or `undefined` when it has none (such
 * a node is refused: nobody could reach it).
 */
export function netAddressOf (multiaddrs: Multiaddr[]): NetAddress | undefined {
  if (multiaddrs.length === 0) {
    return undefined
  }
  let domain: string | undefined
  let memory = false
  let other: string | undefined
  for (const ma of multiaddrs) {
    const first = ma.getComponents()[0]
    if (first == null) {
      continue
    }
    if ((first.code === IP4 || first.code === IP6) && first.value != null) {
      const bytes = parseIP(first.value)
      if (bytes != null) {
        return ipAddress(bytes)
      }
    } else if (DNS_CODES.has(first.code) && first.value != null) {
      domain ??= registrableDomain(first.value)
    } else if (first.code === MEMORY) {
      memory = true
    } else {
      other ??= first.name
    }
  }
  if (domain != null) {
    return { kind: 'domain', domain }
  }
  if (memory) {
    return { kind: 'memory' }
  }
  return { kind: 'other', name: other ?? 'unknown' }
}

function ipAddress (bytes: Uint8Array): NetAddress {
  if (bytes.length === 16 && isIPv4Mapped(bytes)) {
    return { kind: 'ip', family: 4, bytes: bytes.slice(12) }
  }
  return { kind: 'ip', family: bytes.length === 4 ? 4 : 6, bytes }
}

function isIPv4Mapped (bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) {
    if (bytes[i] !== 0) {
      return false
    }
  }
  return bytes[10] === 0xff && bytes[11] === 0xff
}

function registrableDomain (name: string): string {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.')
  return labels.slice(-2).join('.')
}

interface Cidr { bytes: number[], bits: number }

// geth `netutil` lan4 / lan6 lists, plus IPv4 link-local
const LAN4: Cidr[] = [
  { bytes: [0, 0, 0, 0], bits: 8 },
  { bytes: [10, 0, 0, 0], bits: 8 },
  { bytes: [127, 0, 0, 0], bits: 8 },
  { bytes: [169, 254, 0, 0], bits: 16 },
  { bytes: [172, 16, 0, 0], bits: 12 },
  { bytes: [192, 168, 0, 0], bits: 16 }
]
const LAN6: Cidr[] = [
  { bytes: [0xfe, 0x80], bits: 10 },
  { bytes: [0xfc, 0x00], bits: 7 }
]

function inCidr (ip: Uint8Array, cidr: Cidr): boolean {
  let bits = cidr.bits
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff
    if (((ip[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) {
      return false
    }
  }
  return true
}

function isIPv6Loopback (ip: Uint8Array): boolean {
  for (let i = 0; i < 15; i++) {
    if (ip[i] !== 0) {
      return false
    }
  }
  return ip[15] === 1
}

/**
 * Port of geth `netutil.IsLAN`: loopback, private and link-local ranges (127/8, 10/8,
 * 172.16/12, 192.168/16, 169.254/16, 0/8, ::1, fe80::/10, fc00::/7, and their 4-in-6 forms).
 */
export function isLAN (ip: Uint8Array): boolean {
  if (ip.length === 16 && isIPv4Mapped(ip)) {
    return isLAN(ip.subarray(12))
  }
  if (ip.length === 4) {
    return LAN4.some(cidr => inCidr(ip, cidr))
  }
  return isIPv6Loopback(ip) || LAN6.some(cidr => inCidr(ip, cidr))
}

// the private ranges a LAN address can be in, by name: two addresses are on the same LAN
// (as far as an address can tell) when they are in the same one
const LAN_NETWORKS: Array<[string, Cidr]> = [
  ['0/8', { bytes: [0, 0, 0, 0], bits: 8 }],
  ['10/8', { bytes: [10, 0, 0, 0], bits: 8 }],
  ['169.254/16', { bytes: [169, 254, 0, 0], bits: 16 }],
  ['172.16/12', { bytes: [172, 16, 0, 0], bits: 12 }],
  ['192.168/16', { bytes: [192, 168, 0, 0], bits: 16 }],
  ['fe80::/10', { bytes: [0xfe, 0x80], bits: 10 }],
  ['fc00::/7', { bytes: [0xfc, 0x00], bits: 7 }]
]

/**
 * The private range a LAN address is in (`10/8`, `172.16/12`, `192.168/16`, `169.254/16`,
 * `0/8`, `fe80::/10`, `fc00::/7`), or `undefined` for loopback and public addresses. The
 * relay rules take two addresses in the same range to be on the same LAN: all an address
 * says, since two sites may number their LANs alike.
 */
export function lanNetworkOf (ip: Uint8Array): string | undefined {
  const bytes = ip.length === 16 && isIPv4Mapped(ip) ? ip.subarray(12) : ip
  for (const [name, cidr] of LAN_NETWORKS) {
    // an IPv4 range is written in 4 bytes, an IPv6 one in its prefix bytes only
    if ((bytes.length === 4) === (cidr.bytes.length === 4) && inCidr(bytes, cidr)) {
      return name
    }
  }
  return undefined
}

/** Whether an IP is loopback (127/8, ::1, or ::ffff:127.x). */
export function isLoopback (ip: Uint8Array): boolean {
  if (ip.length === 16 && isIPv4Mapped(ip)) {
    return isLoopback(ip.subarray(12))
  }
  return ip.length === 4 ? ip[0] === 127 : isIPv6Loopback(ip)
}

/** The kind of host a DNS name names by convention, or `undefined` for a public name. */
export type LocalName = 'loopback' | 'lan'

// names that never leave the host (RFC 6761 §6.3)
const LOOPBACK_SUFFIXES = ['localhost']
// names that never leave the local network: mDNS (RFC 6762), the ICANN private-use
// `internal` TLD, `home.arpa` (RFC 8375), and the common router and corporate ones
const LAN_SUFFIXES = ['local', 'internal', 'lan', 'home.arpa', 'home', 'corp', 'intranet', 'private', 'localdomain']

/**
 * Whether a DNS name is local by convention: `localhost` and `*.localhost` name this
 * host (loopback); `*.local`, `*.internal`, `*.lan`, `*.home.arpa`, … name a host on the
 * local network (LAN). A single-label name (no dot) is resolved through the local search
 * domains, so it is taken as LAN too. Other names are `undefined`: public, judged only by
 * the IP limits (see docs/PROTOCOL.md §4 for the risk that leaves).
 */
export function localNameKind (name: string): LocalName | undefined {
  const lower = name.toLowerCase().replace(/\.$/, '')
  const endsWith = (suffix: string): boolean => lower === suffix || lower.endsWith(`.${suffix}`)
  if (LOOPBACK_SUFFIXES.some(endsWith)) {
    return 'loopback'
  }
  if (LAN_SUFFIXES.some(endsWith) || !lower.includes('.')) {
    return 'lan'
  }
  return undefined
}

/** Limits for one `DistinctNetSet`. */
export interface NetLimits {
  /** IPv4 prefix length that makes one subnet (geth `bucketSubnet` / `tableSubnet`). */
  ipv4Subnet: number
  /** IPv6 prefix length that makes one subnet: /48, not geth's 24 bits (geth #20522). */
  ipv6Subnet: number
  /** Nodes allowed per subnet. */
  limit: number
  /** Whether LAN and loopback addresses are exempt (geth exempts them always). */
  allowLan: boolean
}

/**
 * Port of geth `netutil.DistinctNetSet`: counts nodes per subnet and refuses one more than
 * `limit` in any. Addresses that are exempt (LAN when allowed, memory transport) are never
 * counted; `groupOf` says which.
 */
export class DistinctNetSet {
  private readonly limits: NetLimits
  // BOUNDED: one entry per distinct subnet of the nodes counted (≤ the table's node count)
  private readonly members = new Map<string, number>()

  constructor (limits: NetLimits) {
    this.limits = limits
  }

  /** The subnet a node is counted under, or `undefined` when it is exempt. */
  groupOf (address: NetAddress): string | undefined {
    switch (address.kind) {
      case 'memory':
        return undefined
      case 'domain':
        // a name that is local by convention is a LAN host: exempt when LAN addresses are
        if (this.limits.allowLan && localNameKind(address.domain) != null) {
          return undefined
        }
        return `dns/${address.domain}`
      case 'other':
        return `other/${address.name}`
      case 'ip': {
        if (this.limits.allowLan && isLAN(address.bytes)) {
          return undefined
        }
        const bits = address.family === 4 ? this.limits.ipv4Subnet : this.limits.ipv6Subnet
        return `ip${address.family}/${prefix(address.bytes, bits)}/${bits}`
      }
    }
  }

  /** Counts `address` in; `false` (and nothing counted) when its subnet is full. */
  add (address: NetAddress): boolean {
    const group = this.groupOf(address)
    if (group == null) {
      return true
    }
    const count = this.members.get(group) ?? 0
    if (count >= this.limits.limit) {
      return false
    }
    this.members.set(group, count + 1)
    return true
  }

  /** Counts `address` out. */
  remove (address: NetAddress): void {
    const group = this.groupOf(address)
    if (group == null) {
      return
    }
    const count = this.members.get(group) ?? 0
    if (count <= 1) {
      this.members.delete(group)
    } else {
      this.members.set(group, count - 1)
    }
  }

  /** How many nodes are counted under `address`'s subnet (0 when exempt). */
  count (address: NetAddress): number {
    const group = this.groupOf(address)
    return group == null ? 0 : this.members.get(group) ?? 0
  }

  /** Every subnet and its count, for invariant checks and metrics. */
  entries (): Array<[string, number]> {
    return [...this.members.entries()]
  }
}

function prefix (bytes: Uint8Array, bits: number): string {
  const parts: string[] = []
  let remaining = Math.min(bits, bytes.length * 8)
  for (let i = 0; remaining > 0; i++, remaining -= 8) {
    const mask = remaining >= 8 ? 0xff : (0xff << (8 - remaining)) & 0xff
    parts.push(((bytes[i] ?? 0) & mask).toString(16))
  }
  return parts.join('.')
}

/** A string that is equal for equal `NetAddress`es. */
export function netAddressKey (address: NetAddress): string {
  switch (address.kind) {
    case 'ip': return `ip${address.family}/${[...address.bytes].join('.')}`
    case 'domain': return `dns/${address.domain}`
    case 'other': return `other/${address.name}`
    case 'memory': return 'memory'
  }
}

/** The settings the table's IP limits are built from (a subset of `TableInit`). */
export interface IpLimitSettings {
  bucketIpLimit?: number
  bucketSubnet?: number
  tableIpLimit?: number
  tableSubnet?: number
  allowLan?: boolean
}

/** The per-bucket and per-table limits, geth's defaults filled in. */
export function tableNetLimits (settings: IpLimitSettings): { bucket: NetLimits, table: NetLimits } {
  const allowLan = settings.allowLan ?? true
  return {
    bucket: { ipv4Subnet: settings.bucketSubnet ?? BUCKET_SUBNET, ipv6Subnet: IPV6_SUBNET, limit: settings.bucketIpLimit ?? BUCKET_IP_LIMIT, allowLan },
    table: { ipv4Subnet: settings.tableSubnet ?? TABLE_SUBNET, ipv6Subnet: IPV6_SUBNET, limit: settings.tableIpLimit ?? TABLE_IP_LIMIT, allowLan }
  }
}
