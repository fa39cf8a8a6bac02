import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CliError, firstLine } from './errors.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The commands of `kad-discovery`. */
export type CommandName = 'demo' | 'node' | 'crawl'

/** `kad-discovery demo` options. */
export interface DemoOptions {
  /** Nodes in the local network, the bootnode included. */
  nodes: number
  /** `memory` (in-process) or `tcp` (on 127.0.0.1 only). */
  transport: 'memory' | 'tcp'
  /** Lookups checked against the true closest nodes. */
  lookups: number
  /** Bound of the wait for full tables and connections, ms. */
  timeout: number
}

/** `kad-discovery node` options. */
export interface NodeOptions {
  /** TCP multiaddrs to listen on. */
  listen: string[]
  /** Bootnode multiaddrs, each with `/p2p/<peer id>`. */
  bootnodes: string[]
  /** The directory of `peer.key` and the node database. */
  data: string
  /** One JSON object per line instead of text. */
  json: boolean
}

/** `kad-discovery crawl` options. */
export interface CrawlOptions {
  /** Where the crawl starts: multiaddrs with `/p2p/<peer id>`. */
  bootnodes: string[]
  /** The JSON file to write; `-` for standard output. */
  out: string
  /** Bound of the whole crawl, ms. */
  timeout: number
}

/** What the command line asks for. */
export type Invocation =
  | { command: 'help', topic?: CommandName }
  | { command: 'version' }
  | { command: 'demo', options: DemoOptions }
  | { command: 'node', options: NodeOptions }
  | { command: 'crawl', options: CrawlOptions }

/** The default `--data` of `node`. */
export const DEFAULT_DATA_DIR = './kad-discovery-data'
/** The default `--listen` of `node`: every interface, a free port. */
export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/0'
/** The default `--out` of `crawl`. */
export const DEFAULT_OUT = 'nodes.json'

const COMMANDS: readonly CommandName[] = ['demo', 'node', 'crawl']

/**
 * Parses `argv` (without the node binary and script): a command, then its options.
 * Throws `CliError` (exit code 2) with one line for anything it cannot use.
 */
export function parseCommandLine (argv: string[]): Invocation {
  const [first, ...rest] = argv
  if (first == null) {
    throw new CliError('missing command: demo, node or crawl (try kad-discovery --help)')
  }
  if (first === '--help' || first === '-h') {
    return { command: 'help' }
  }
  if (first === '--version' || first === '-v') {
    return { command: 'version' }
  }
  if (first === 'help') {
    const topic = rest[0]
    return topic != null && isCommand(topic) ? { command: 'help', topic } : { command: 'help' }
  }
  if (!isCommand(first)) {
    throw new CliError(`unknown command '${first}': expected demo, node or crawl`)
  }
  switch (first) {
    case 'demo': return parseDemo(rest)
    case 'node': return parseNode(rest)
    case 'crawl': return parseCrawl(rest)
  }
}

function isCommand (name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name)
}

type OptionSpec = Record<string, { type: 'string' | 'boolean', multiple?: boolean, short?: string }>
type Values = Record<string, string | boolean | string[] | boolean[] | undefined>

/** `parseArgs` in strict mode, its errors cut to one line of our own. */
function parseOptions (command: CommandName, args: string[], options: OptionSpec): Values {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values
  } catch (err) {
    // node's messages go on with advice about '--'; the first sentence is the point
    const reason = firstLine(err).split(/\.\s/)[0] ?? ''
    throw new CliError(`${command}: ${reason.charAt(0).toLowerCase()}${reason.slice(1)} (try kad-discovery ${command} --help)`)
  }
}

function parseDemo (args: string[]): Invocation {
  const values = parseOptions('demo', args, {
    nodes: { type: 'string' },
    transport: { type: 'string' },
    lookups: { type: 'string' },
    timeout: { type: 'string' }
  })
  if (values.help === true) {
    return { command: 'help', topic: 'demo' }
  }
  const transport = stringOf(values.transport) ?? 'memory'
  if (transport !== 'memory' && transport !== 'tcp') {
    throw new CliError(`--transport ${transport}: expected memory or tcp`)
  }
  return {
    command: 'demo',
    options: {
      nodes: integerOf('--nodes', values.nodes, 40, 2, 300),
      transport,
      lookups: integerOf('--lookups', values.lookups, 20, 0, 1000),
      timeout: secondsOf('--timeout', values.timeout, 30)
    }
  }
}

function parseNode (args: string[]): Invocation {
  const values = parseOptions('node', args, {
    listen: { type: 'string', multiple: true },
    bootnode: { type: 'string', multiple: true },
    data: { type: 'string' },
    json: { type: 'boolean' }
  })
  if (values.help === true) {
    return { command: 'help', topic: 'node' }
  }
  const data = stringOf(values.data) ?? DEFAULT_DATA_DIR
  if (data === '') {
    throw new CliError('--data: expected a directory')
  }
  const listen = stringsOf(values.listen)
  return {
    command: 'node',
    options: {
      listen: (listen.length > 0 ? listen : [DEFAULT_LISTEN]).map(checkListen),
      bootnodes: stringsOf(values.bootnode).map(checkBootnode),
      data,
      json: values.json === true
    }
  }
}

function parseCrawl (args: string[]): Invocation {
  const values = parseOptions('crawl', args, {
    bootnode: { type: 'string', multiple: true },
    out: { type: 'string' },
    timeout: { type: 'string' }
  })
  if (values.help === true) {
    return { command: 'help', topic: 'crawl' }
  }
  const bootnodes = stringsOf(values.bootnode).map(checkBootnode)
  if (bootnodes.length === 0) {
    throw new CliError('crawl needs at least one --bootnode <multiaddr with /p2p/>')
  }
  const out = stringOf(values.out) ?? DEFAULT_OUT
  if (out === '') {
    throw new CliError('--out: expected a file name, or - for standard output')
  }
  return { command: 'crawl', options: { bootnodes, out, timeout: secondsOf('--timeout', values.timeout, 60) } }
}

function stringOf (value: Values[string]): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function stringsOf (value: Values[string]): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

/** A whole number within `[min, max]`; `fallback` when the option is absent. */
function integerOf (flag: string, value: Values[string], fallback: number, min: number, max: number): number {
  const text = stringOf(value)
  if (text == null) {
    return fallback
  }
  const n = /^\d+$/.test(text) ? Number(text) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(`${flag} ${text}: expected a whole number from ${min} to ${max}`)
  }
  return n
}

/** Seconds (decimals allowed, up to an hour) as ms; `fallback` seconds when absent. */
function secondsOf (flag: string, value: Values[string], fallback: number): number {
  const text = stringOf(value)
  if (text == null) {
    return fallback * 1000
  }
  const s = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN
  if (!(s > 0 && s <= 3600)) {
    throw new CliError(`${flag} ${text}: expected seconds, more than 0 and at most 3600`)
  }
  return Math.round(s * 1000)
}

/** Parses a multiaddr or says, in one line, why it is not one. */
export function parseMultiaddr (flag: string, text: string): Multiaddr {
  try {
    return multiaddr(text)
  } catch (err) {
    throw new CliError(`${flag} ${text}: not a valid multiaddr (${firstLine(err)})`)
  }
}

function hasComponent (ma: Multiaddr, name: string): boolean {
  return ma.getComponents().some(c => c.name === name)
}

/** A `--listen` address: a TCP multiaddr without a peer id (the nodes here speak TCP only). */
export function checkListen (text: string): string {
  const ma = parseMultiaddr('--listen', text)
  if (!hasComponent(ma, 'tcp')) {
    throw new CliError(`--listen ${text}: not a TCP address (e.g. /ip4/127.0.0.1/tcp/4001)`)
  }
  if (hasComponent(ma, 'p2p')) {
    throw new CliError(`--listen ${text}: a listen address has no /p2p/ part`)
  }
  return ma.toString()
}

/**
 * A `--bootnode` address: a TCP multiaddr ending in `/p2p/<peer id>`, since a node is
 * only known by its id (DESIGN.md §2).
 */
export function checkBootnode (text: string): string {
  const ma = parseMultiaddr('--bootnode', text)
  const peer = ma.getComponents().reverse().find(c => c.name === 'p2p')?.value
  if (peer == null) {
    throw new CliError(`--bootnode ${text}: no /p2p/<peer id> part (use the full address the node printed)`)
  }
  try {
    peerIdFromString(peer)
  } catch {
    throw new CliError(`--bootnode ${text}: ${peer} is not a peer id`)
  }
  if (!hasComponent(ma, 'tcp')) {
    throw new CliError(`--bootnode ${text}: not a TCP address (the nodes here speak TCP only)`)
  }
  return ma.toString()
}
