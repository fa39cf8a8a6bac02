import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { LevelDatastore } from 'datastore-level'
import { CliError, describeFsError, ExitCode, firstLine } from './errors.js'
import { prepareDirectory } from './files.js'
import { connectedPeers, createCliNode, dialableAddrs, stopAll } from './libp2p.js'
import { listenForStop, pause } from './signals.js'
import type { NodeOptions } from './args.js'
import type { CliNode } from './libp2p.js'
import type { PrivateKey } from '@libp2p/interface'

/** The identity file inside `--data`: the private key as libp2p's protobuf. */
export const KEY_FILE = 'peer.key'
/** The node database's directory inside `--data`. */
export const DATASTORE_DIR = 'datastore'
// the multicodec of /p2p/
const P2P_CODE = 421
// a status line this often, so a quiet node still shows it is alive
const STATUS_INTERVAL = 30_000
// a node that will not stop must not keep the process from exiting
const STOP_TIMEOUT = 10_000

/**
 * `kad-discovery node`: one real TCP node with its identity and node database in
 * `--data`. Prints its addresses, then peers as they are found and connected, until
 * SIGINT or SIGTERM; then stops the node (which copies live nodes to the node database),
 * closes the database and returns 0.
 */
export async function runNode (options: NodeOptions): Promise<number> {
  const dir = resolve(options.data)
  await prepareDirectory('--data', dir)
  const { key, created } = await loadOrCreateKey(join(dir, KEY_FILE))
  const datastore = await openDatastore(join(dir, DATASTORE_DIR))
  const stop = listenForStop()
  const out = new NodeOutput(options.json)
  let node: CliNode | undefined
  let code: number = ExitCode.Ok
  try {
    node = await createCliNode({
      transport: 'tcp',
      listen: options.listen,
      privateKey: key,
      discovery: { bootnodes: options.bootnodes, datastore },
      start: false
    })
    watchEvents(node, out)
    await startNode(node, options.listen)
    out.listening(node, dir, created)
    await runUntil(node, out, stop.signal)
    out.line({ event: 'stopping', signal: stop.received ?? null }, `stopping (${stop.received ?? 'signal'}): saving live nodes, closing the node database`)
  } finally {
    if (node != null && !await stopNode(node)) {
      out.error(`the node did not stop within ${STOP_TIMEOUT / 1000}s`)
      code = ExitCode.Failure
    }
    await datastore.close().catch(err => { out.error(`could not close the node database: ${firstLine(err)}`) })
    stop.dispose()
  }
  out.line({ event: 'stopped' }, 'stopped')
  return code
}

/**
 * Reads the node's private key, or makes one (Ed25519) on the first run. The file is
 * written owner-only (0600) and never overwritten: a key is an identity.
 */
export async function loadOrCreateKey (file: string): Promise<{ key: PrivateKey, created: boolean }> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CliError(`cannot read ${file}: ${describeFsError(err)}`)
    }
  }
  if (bytes != null) {
    try {
      return { key: privateKeyFromProtobuf(bytes), created: false }
    } catch (err) {
      throw new CliError(`${file} is not a libp2p private key (${firstLine(err)}); move it away to start with a new identity`, ExitCode.Failure)
    }
  }
  const key = await generateKeyPair('Ed25519')
  try {
    await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${describeFsError(err)}`)
  }
  return { key, created: true }
}

async function openDatastore (dir: string): Promise<LevelDatastore> {
  const datastore = new LevelDatastore(dir)
  try {
    await datastore.open()
  } catch (err) {
    // datastore-level says only "Database failed to open"; the usual cause is LevelDB's
    // lock, held by a second node on the same --data
    const reason = firstLine(err).replace(/^Error: /, '')
    throw new CliError(`cannot open the node database in ${dir} (another node using the same --data?): ${reason}`, ExitCode.Failure)
  }
  return datastore
}

async function startNode (node: CliNode, listen: string[]): Promise<void> {
  try {
    await node.start()
  } catch (err) {
    await stopAll([node])
    throw new CliError(`could not start listening on ${listen.join(', ')}: ${firstLine(err)}`, ExitCode.Failure)
  }
}

/** Waits for the stop signal, with a status line every `STATUS_INTERVAL`. */
async function runUntil (node: CliNode, out: NodeOutput, signal: AbortSignal): Promise<void> {
  // BOUNDED: runs until the user stops the node, one wait at a time
  while (!signal.aborted) {
    await pause(STATUS_INTERVAL, signal)
    if (!signal.aborted) {
      const table = node.services.discovery.size
      const connections = connectedPeers(node)
      out.line({ event: 'status', table, connections }, `status      ${table} nodes in the table, ${connections} connected peers`)
    }
  }
}

/** Stops the node within `STOP_TIMEOUT`; false when it did not. */
async function stopNode (node: CliNode): Promise<boolean> {
  const cancel = new AbortController()
  const stopped = await Promise.race([
    stopAll([node]).then(() => true),
    pause(STOP_TIMEOUT, cancel.signal).then(() => false)
  ])
  cancel.abort()
  return stopped
}

function watchEvents (node: CliNode, out: NodeOutput): void {
  node.services.discovery.addEventListener('peer', evt => {
    // the peer id has its own field: addresses without /p2p/, whichever way they came
    const addrs = evt.detail.multiaddrs.map(ma => ma.decapsulateCode(P2P_CODE).toString())
    out.line({ event: 'peer', peerId: evt.detail.id.toString(), addrs }, `found       ${evt.detail.id.toString()} ${addrs.join(' ')}`)
  })
  node.addEventListener('peer:connect', evt => {
    const connection = node.getConnections(evt.detail)[0]
    const addr = connection?.remoteAddr.toString() ?? null
    const direction = connection?.direction ?? null
    out.line({ event: 'connect', peerId: evt.detail.toString(), addr, direction },
      `connected   ${evt.detail.toString()} ${addr ?? ''} ${direction != null ? `(${direction})` : ''}`.trimEnd())
  })
  node.addEventListener('peer:disconnect', evt => {
    out.line({ event: 'disconnect', peerId: evt.detail.toString() }, `disconnected ${evt.detail.toString()}`)
  })
}

/** What `node` prints: aligned text, or with `--json` one JSON object per line. */
class NodeOutput {
  private readonly json: boolean

  constructor (json: boolean) {
    this.json = json
  }

  listening (node: CliNode, dir: string, created: boolean): void {
    const addrs = dialableAddrs(node)
    if (this.json) {
      this.write(JSON.stringify({ event: 'listening', peerId: node.peerId.toString(), addrs, data: dir, newIdentity: created }))
      return
    }
    this.write(`peer id     ${node.peerId.toString()} (${created ? 'new identity' : 'identity loaded'} from ${dir})`)
    for (const addr of addrs) {
      this.write(`listening   ${addr}`)
    }
  }

  line (json: Record<string, unknown>, text: string): void {
    this.write(this.json ? JSON.stringify(json) : text)
  }

  /** A problem worth a line on stderr, in both modes (JSON readers read stdout). */
  error (text: string): void {
    process.stderr.write(`kad-discovery: ${text}\n`)
  }

  private write (text: string): void {
    process.stdout.write(`${text}\n`)
  }
}
