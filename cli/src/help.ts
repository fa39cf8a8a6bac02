import { DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_OUT } from './args.js'
import type { CommandName } from './args.js'

const MAIN = `Usage: kad-discovery <command> [options]

Kademlia peer discovery for libp2p, after go-ethereum's discovery table.

Commands:
  demo     start a local network and watch discovery fill tables and connect nodes
  node     run one real node (TCP) that keeps its identity and seeds in a directory
  crawl    walk a network from a bootnode and write every node found

Options:
  -h, --help       this text; kad-discovery <command> --help for a command's
  -v, --version    the version

Exit codes: 0 done, 1 failed, 2 bad arguments, 130 interrupted (demo, crawl).
Docs: docs/CLI.md`

const DEMO = `Usage: kad-discovery demo [--nodes 40] [--transport memory|tcp] [--lookups 20] [--timeout 30]

Starts a local network (one bootnode; every other node knows only it), shows
progress while the tables fill and the auto-dialer connects, runs lookups and
prints a summary: table sizes, connections, lookup accuracy against the true
closest nodes, and how long bootstrapping took. Exits by itself.

Options:
  --nodes <n>          nodes, the bootnode included, 2 to 300 (default 40)
  --transport <name>   memory: in this process (default); tcp: on 127.0.0.1 only
  --lookups <n>        lookups of random keys checked against the truth (default 20)
  --timeout <s>        how long to wait for full tables and connections (default 30)
  -h, --help           this text

Progress: one live line on a terminal, a plain line every second otherwise.
Exit codes: 0 done (targets missed within --timeout are reported, not fatal),
1 nothing was discovered at all, 2 bad arguments, 130 Ctrl-C.`

const NODE = `Usage: kad-discovery node [--listen <multiaddr>]... [--bootnode <multiaddr>]... [--data <dir>] [--json]

Runs a real node over TCP (noise, yamux, identify). Its key (peer.key) and its
node database (datastore/, LevelDB) live in --data, so a restart keeps its
identity and its seeds. Prints its own addresses, then peers as they are found
and connected. Ctrl-C or SIGTERM: saves live nodes, closes the database, exits 0.

Options:
  --listen <multiaddr>     a TCP address to listen on, repeatable
                           (default ${DEFAULT_LISTEN}: every interface, a free port)
  --bootnode <multiaddr>   a node to join through, with /p2p/<peer id>, repeatable
  --data <dir>             identity and node database (default ${DEFAULT_DATA_DIR})
  --json                   one JSON object per line: listening, peer, connect, disconnect
  -h, --help               this text

Exit codes: 0 stopped by a signal, 1 failed to start or stop, 2 bad arguments.`

const CRAWL = `Usage: kad-discovery crawl --bootnode <multiaddr>... [--out ${DEFAULT_OUT}] [--timeout 60]

Starts a throwaway node that listens nowhere (so no table keeps it), joins
through the bootnodes and runs lookups (of random keys and of every node it
hears of) until two rounds find nothing new or --timeout passes. Writes
{ "nodes": [{ "id", "addrs", "answered" }] } and prints how many it found.

Options:
  --bootnode <multiaddr>   where to start, with /p2p/<peer id>, repeatable, required
  --out <file>             the JSON file (default ${DEFAULT_OUT}); - for standard output
  --timeout <s>            bound of the whole crawl (default 60)
  -h, --help               this text

Progress goes to standard error: a live line on a terminal, a line a second otherwise.
Exit codes: 0 done, 1 no node answered, 2 bad arguments, 130 Ctrl-C (what was
found so far is still written).`

/** The help text of a command, or of the tool when `topic` is absent. */
export function helpText (topic?: CommandName): string {
  switch (topic) {
    case 'demo': return DEMO
    case 'node': return NODE
    case 'crawl': return CRAWL
    default: return MAIN
  }
}
