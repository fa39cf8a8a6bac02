import assert from 'node:assert/strict'
import { Clis } from './child.js'

/** The summary's lines, keyed by their label (`tables`, `lookups`, `result`, …). */
function summary (stdout: string): Map<string, string> {
  const lines = stdout.split('\n')
  const start = lines.findIndex(line => line.startsWith('summary: '))
  assert.ok(start >= 0, `a summary in:\n${stdout}`)
  const rows = new Map<string, string>()
  for (const line of lines.slice(start + 1)) {
    const match = /^ {2}(\S+(?: \S+)?) {2,}(.*)$/.exec(line)
    if (match != null) {
      rows.set(match[1]!, match[2]!)
    }
  }
  return rows
}

describe('kad-discovery demo', function () {
  this.timeout(60_000)
  const clis = new Clis()

  afterEach(async () => { await clis.killAll() })

  it('runs a small memory network to a summary and exits 0 by itself', async () => {
    const result = await clis.run(['demo', '--nodes', '6', '--lookups', '3'], 55_000)
    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`)
    // not a terminal: plain lines, no live-line control characters
    assert.ok(!result.stdout.includes('\r') && !result.stdout.includes('\x1b'))
    assert.match(result.stdout, /^starting 6 nodes on the memory transport/)
    assert.match(result.stdout, /\nbootnode \/memory\/\S+\/p2p\/12D3Koo\w+\n/)
    const rows = summary(result.stdout)
    assert.match(rows.get('full tables')!, /^every table held 5 nodes \d+\.\ds after the start$/)
    assert.match(rows.get('tables')!, /^min 5, median 5, max 5 nodes$/)
    assert.match(rows.get('connections')!, /^min \d+, median \d+, max \d+ distinct peers$/)
    assert.match(rows.get('lookups')!, /^\d\/3 answered, accuracy \d+\.\d% of the true 5 closest/)
    assert.match(rows.get('result')!, /^ok/)
    assert.match(result.stdout, /\nstopping 6 nodes\n$/)
    assert.equal(result.stderr, '')
  })

  it('runs over TCP on 127.0.0.1 only, every node joining', async () => {
    // (libp2p's limit of 5 inbound connections a second from one host, which the demo
    // lifts, turned nodes away from the bootnode at 20 nodes; too slow a case for here)
    const result = await clis.run(['demo', '--nodes', '8', '--transport', 'tcp', '--lookups', '2'], 55_000)
    assert.equal(result.code, 0, `stdout: ${result.stdout}\nstderr: ${result.stderr}`)
    assert.match(result.stdout, /\nbootnode \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3Koo\w+\n/)
    const rows = summary(result.stdout)
    assert.match(rows.get('full tables')!, /^every table held 7 nodes/)
    assert.match(rows.get('result')!, /^ok/)
  })

  it('stops every node on Ctrl-C and exits 130', async () => {
    const cli = clis.start(['demo', '--nodes', '6', '--timeout', '50'], 55_000)
    await cli.waitFor(() => /\nbootnode /.test(cli.stdout), 'the bootnode line', 20_000)
    cli.signal('SIGINT')
    const exit = await cli.exited
    assert.equal(exit.code, 130, `stdout: ${cli.stdout}\nstderr: ${cli.stderr}`)
    assert.match(cli.stdout, /\nstopping \d nodes\ninterrupted by SIGINT\n$/)
    assert.doesNotMatch(cli.stdout, /summary:/)
  })
})
