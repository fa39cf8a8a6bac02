import { parseIP } from '@chainsafe/is-ip/parse'
import { isLAN, isLoopback, lanNetworkOf, localNameKind } from '../table/ip-limits.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const IP4 = 4
const IP6 = 41
const IP6ZONE = 42

/**
 * Why an address was refused; geth's `errUnspecified`, `errSpecial`, `errLoopback`,
 * `errLAN`, plus `memory`: a memory-transport address from or to anyone outside the
 * process.
 */
export type RelayRefusal = 'unspecified' | 'special' | 'loopback' | 'lan' | 'memory'

const MEMORY = 777
const DNS_CODES = new Set([53, 54, 55, 56]) // dns, dns4, dns6, dnsaddr

/**
 * The host at the other end of a connection, as the relay rules judge it: its IP, if
 * its remote address has one, and whether the connection is in-process (the memory
 * transport), the only kind over which a `/memory/` address means anything.
 */
export interface RelayPeer {
  /** The IP of the connection's remote address; `undefined` without one (relay, memory). */
  ip?: Uint8Array
  /** Whether the connection is in-process (memory transport). */
  inProcess: boolean
}

/** The `RelayPeer` at the far end of a connection with this remote address. */
export function relayPeerOf (remoteAddr: Multiaddr): RelayPeer {
  return { ip: ipOf(remoteAddr), inProcess: remoteAddr.getComponents()[0]?.code === MEMORY }
}

/**
 * The IP an address starts with (4-in-6 addresses as their 4 bytes), or `undefined` for
 * an address without one: a DNS name, the memory transport, a relay.
 */
export function ipOf (ma: Multiaddr): Uint8Array | undefined {
  const components = ma.getComponents()
  // an IPv6 zone names a local interface and comes before the address it scopes
  const first = components[0]?.code === IP6ZONE ? components[1] : components[0]
  if (first == null || (first.code !== IP4 && first.code !== IP6) || first.value == null) {
    return undefined
  }
  const bytes = parseIP(first.value)
  if (bytes == null) {
    return undefined
  }
  return bytes.length === 16 && isIPv4Mapped(bytes) ? bytes.slice(12) : bytes
}

/**
 * After geth `netutil.CheckRelayIP`: whether `addr`, an IP a node at `sender` tells
 * about, is a valid dial target for someone else. `sender` is `undefined` when the
 * connection has no IP (relay, memory transport); it is then treated as a public host,
 * the strictest case. Returns why not, or `undefined` when the address may be relayed.
 * - an unspecified address (`0.0.0.0`, `::`) is never valid;
 * - special-purpose networks (multicast, broadcast, documentation, benchmarking, …)
 *   never are either;
 * - a loopback address only from a loopback sender;
 * - a LAN address only from a loopback sender or one on the same LAN: the same private
 *   range (`lanNetworkOf`). Departs from geth, which takes a LAN address from any LAN
 *   host, so a node on one LAN could point a node on another at its own private hosts
 *   (DESIGN.md §6: "never outside that LAN").
 */
export function checkRelayIP (sender: Uint8Array | undefined, addr: Uint8Array): RelayRefusal | undefined {
  if (isUnspecified(addr)) {
    return 'unspecified'
  }
  if (isSpecialNetwork(addr)) {
    return 'special'
  }
  const senderIsLoopback = sender != null && isLoopback(sender)
  if (isLoopback(addr)) {
    return senderIsLoopback ? undefined : 'loopback'
  }
  const network = lanNetworkOf(addr)
  if (network != null && !senderIsLoopback && (sender == null || lanNetworkOf(sender) !== network)) {
    return 'lan'
  }
  return undefined
}

/**
 * Whether `addr`, an address a node at `sender` tells about (or that we tell `sender`
 * about), may be relayed: `checkRelayIP` for an address with an IP; a memory-transport
 * address only over an in-process connection; a DNS name that is local by convention
 * as loopback (only with a loopback sender) or LAN (only with a loopback or LAN sender:
 * which LAN a name is on cannot be told); other names and relay addresses are kept.
 */
export function checkRelayAddr (sender: RelayPeer, addr: Multiaddr): RelayRefusal | undefined {
  const ip = ipOf(addr)
  if (ip != null) {
    return checkRelayIP(sender.ip, ip)
  }
  const first = addr.getComponents()[0]
  if (first?.code === MEMORY) {
    return sender.inProcess ? undefined : 'memory'
  }
  if (first != null && DNS_CODES.has(first.code)) {
    const kind = localNameKind(first.value ?? '')
    const senderIsLoopback = sender.ip != null && isLoopback(sender.ip)
    if (kind === 'loopback' && !senderIsLoopback) {
      return 'loopback'
    }
    if (kind === 'lan' && !senderIsLoopback && (sender.ip == null || !isLAN(sender.ip))) {
      return 'lan'
    }
  }
  return undefined
}

/**
 * The addresses of `addrs` that may pass between us and `sender` (see `checkRelayAddr`),
 * calling `onRefused` for each one dropped.
 */
export function relayableAddrs (sender: RelayPeer, addrs: Multiaddr[], onRefused?: (reason: RelayRefusal) => void): Multiaddr[] {
  return addrs.filter(ma => {
    const refusal = checkRelayAddr(sender, ma)
    if (refusal != null) {
      onRefused?.(refusal)
      return false
    }
    return true
  })
}

function isUnspecified (ip: Uint8Array): boolean {
  return ip.every(b => b === 0)
}

function isIPv4Mapped (ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) {
    if (ip[i] !== 0) {
      return false
    }
  }
  return ip[10] === 0xff && ip[11] === 0xff
}

interface Cidr { bytes: number[], bits: number }

function cidr (spec: string): Cidr {
  const [address = '', bits = '0'] = spec.split('/')
  const bytes = parseIP(address)
  if (bytes == null) {
    throw new Error(`bad CIDR ${spec}`)
  }
  return { bytes: [...bytes], bits: Number(bits) }
}

// geth `netutil` special4 (RFC 5735, IANA IPv4 special registry), plus multicast
const SPECIAL4 = [
  '0.0.0.0/8', '192.0.0.0/29', '192.0.0.9/32', '192.0.0.170/32', '192.0.0.171/32',
  '192.0.2.0/24', '192.31.196.0/24', '192.52.193.0/24', '192.88.99.0/24', '192.175.48.0/24',
  '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '255.255.255.255/32', '224.0.0.0/4'
].map(cidr)
// geth `netutil` special6 (IANA IPv6 special registry), plus multicast
const SPECIAL6 = [
  '100::/64', '2001::/32', '2001:1::1/128', '2001:2::/48', '2001:3::/32', '2001:4:112::/48',
  '2001:5::/32', '2001:10::/28', '2001:20::/28', '2001:db8::/32', '2002::/16', 'ff00::/8'
].map(cidr)

function inCidr (ip: Uint8Array, range: Cidr): boolean {
  if (ip.length !== range.bytes.length) {
    return false
  }
  let bits = range.bits
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff
    if (((ip[i] ?? 0) & mask) !== ((range.bytes[i] ?? 0) & mask)) {
      return false
    }
  }
  return true
}

/** Port of geth `netutil.IsSpecialNetwork`: broadcast, multicast, documentation, … */
export function isSpecialNetwork (ip: Uint8Array): boolean {
  return (ip.length === 4 ? SPECIAL4 : SPECIAL6).some(range => inCidr(ip, range))
}
