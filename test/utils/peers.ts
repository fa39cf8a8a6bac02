import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { RandomSource } from '../../src/table/types.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * A peer id made from random bytes posing as an Ed25519 public key: cheap (≈13 µs), enough
 * for the table, which never verifies a signature. Use `realPeer` where a key must work.
 */
export function fakePeerId (random: RandomSource): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(random.bytes(32)))
}

/** A real Ed25519 key pair and its peer id. */
export async function realPeer (): Promise<{ privateKey: PrivateKey, peerId: PeerId }> {
  const privateKey = await generateKeyPair('Ed25519')
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}

/**
 * Port of geth's test helper `intIP`: the IPv4 address `a.b.c.d` with `n` spread over the
 * last two bytes, from a public range unless `base` says otherwise.
 */
export function intIP (n: number, base: [number, number] = [51, 15]): string {
  return `${base[0]}.${base[1]}.${(n >> 8) & 0xff}.${n & 0xff}`
}

/** A TCP multiaddr for an IP (v4 or v6). */
export function tcpAddr (ip: string, port = 4001): Multiaddr {
  return multiaddr(ip.includes(':') ? `/ip6/${ip}/tcp/${port}` : `/ip4/${ip}/tcp/${port}`)
}
