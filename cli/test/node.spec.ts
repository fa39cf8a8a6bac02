import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Clis } from './child.js'
import type { Cli } from './child.js'

const LOOPBACK = ['--listen', '/ip4/127.0.0.1/tcp/0']

/** Starts `kad-discovery node --json` on 127.0.0.1 and waits for its listening line. */
async function startNode (clis: Clis, data: string, bootnodes: string[] = []): Promise<{ cli: Cli, id: string, addr: string }> {
  const cli = clis.start(['node', ...LOOPBACK, '--data', data, '--json', ...bootnodes.flatMap(b => ['--bootnode', b])])
  await cli.waitFor(() => cli.lines.length > 0, 'the listening line', 20_000)
  const listening = cli.events[0]!
  assert.equal(listening.event, 'listening')
  return { cli, id: listening.peerId, addr: listening.addrs[0] }
}

function connectedTo (cli: Cli, id: string): boolean {
  return cli.events.some(e => e.event === 'connect' && e.peerId === id)
}

describe('kad-discovery node and crawl, on 127.0.0.1', function () {
  this.timeout(60_000)
  const clis = new Clis()
  let dir: string
  let a: Awaited<ReturnType<typeof startNode>>
  let b: Awaited<ReturnType<typeof startNode>>
  let c: Awaited<ReturnType<typeof startNode>>

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kad-cli-node-'))
    a = await startNode(clis, join(dir, 'a'))
    ;[b, c] = await Promise.all([startNode(clis, join(dir, 'b'), [a.addr]), startNode(clis, join(dir, 'c'), [a.addr])])
  })

  after(async () => {
    await clis.killAll()
    await rm(dir, { recursive: true, force: true })
  })

  it('prints its peer id and its listen addresses, each with /p2p/', () => {
    for (const node of [a, b, c]) {
      const listening = node.cli.events[0]!
      assert.ok(listening.addrs.length > 0)
      for (const addr of listening.addrs) {
        assert.match(addr, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${listening.peerId}$`))
      }
      assert.equal(listening.newIdentity, true)
    }
  })

  it('keeps its key owner-only in the data directory', async () => {
    const key = await stat(join(dir, 'a', 'peer.key'))
    assert.equal(key.mode & 0o777, 0o600)
    assert.ok((await stat(join(dir, 'a', 'datastore'))).isDirectory())
  })

  it('finds and connects to the other nodes through the bootnode', async () => {
    // b and c know only a: b learns of c (and c of b) through discovery
    await b.cli.waitFor(() => b.cli.events.some(e => e.event === 'peer' && e.peerId === c.id), 'b to find c', 30_000)
    await c.cli.waitFor(() => c.cli.events.some(e => e.event === 'peer' && e.peerId === b.id), 'c to find b', 30_000)
    await a.cli.waitFor(() => connectedTo(a.cli, b.id) && connectedTo(a.cli, c.id), 'a to connect to b and c', 30_000)
    const found = b.cli.events.find(e => e.event === 'peer' && e.peerId === c.id)!
    assert.ok(found.addrs.every((addr: string) => addr.startsWith('/ip4/127.0.0.1/tcp/')))
  })

  it('crawls the network from the bootnode and writes every node with its addresses', async () => {
    const out = join(dir, 'nodes.json')
    const result = await clis.run(['crawl', '--bootnode', a.addr, '--out', out, '--timeout', '30'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /^crawled 3 nodes \(3 answered\) in \d+\.\ds, wrote /)
    const written = JSON.parse(await readFile(out, 'utf8'))
    assert.deepEqual(written.nodes.map((n: { id: string }) => n.id), [a.id, b.id, c.id].sort())
    for (const node of written.nodes) {
      assert.equal(node.answered, true)
      assert.ok(node.addrs.length > 0)
      assert.ok(node.addrs.every((addr: string) => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/.test(addr)))
    }
  })

  it('crawls to standard output with --out -', async () => {
    const result = await clis.run(['crawl', '--bootnode', a.addr, '--out', '-', '--timeout', '30'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(JSON.parse(result.stdout).nodes.length, 3)
    assert.match(result.stderr, /crawled 3 nodes/)
  })

  it('stops on SIGINT: exits 0 after stopping the node', async () => {
    a.cli.signal('SIGINT')
    const exit = await a.cli.exited
    assert.equal(exit.code, 0, a.cli.stderr)
    assert.deepEqual(a.cli.events.slice(-2).map(e => e.event), ['stopping', 'stopped'])
  })

  it('keeps its identity across a restart from the same data directory, and stops on SIGTERM', async () => {
    const again = await startNode(clis, join(dir, 'a'))
    assert.equal(again.id, a.id)
    assert.equal(again.cli.events[0]!.newIdentity, false)
    again.cli.signal('SIGTERM')
    assert.equal((await again.cli.exited).code, 0, again.cli.stderr)
  })

  it('refuses a data directory another node holds, with one line', async () => {
    const result = await clis.run(['node', ...LOOPBACK, '--data', join(dir, 'b')])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /^kad-discovery: cannot open the node database in .* \(another node using the same --data\?\)/)
    assert.equal(result.stderr.trim().split('\n').length, 1)
  })

  it('crawl exits 1 with one line when no node answers', async () => {
    // port 1 on loopback: nothing listens there, so every dial is refused at once
    const result = await clis.run(['crawl', '--bootnode', `/ip4/127.0.0.1/tcp/1/p2p/${a.id}`, '--out', join(dir, 'none.json'), '--timeout', '20'])
    assert.equal(result.code, 1)
    assert.match(result.stderr, /kad-discovery: no node answered/)
    await assert.rejects(stat(join(dir, 'none.json')))
  })
})
