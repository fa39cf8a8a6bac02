import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Clis } from './child.js'

const PEER = '12D3KooWMTWd1JdCsrKL15gbkr6pFUdFRVZiEE5rJ6EzzJhAymu7'

/** Exit code 2, one `kad-discovery: …` line on stderr matching `pattern`, no stack trace, nothing on stdout. */
function assertUsageError (result: { code: number | null, stdout: string, stderr: string }, pattern: RegExp): void {
  assert.equal(result.code, 2, `exit code; stderr: ${result.stderr}`)
  const lines = result.stderr.split('\n').filter(line => line !== '')
  assert.equal(lines.length, 1, `one line on stderr, got: ${result.stderr}`)
  assert.match(lines[0]!, /^kad-discovery: /)
  assert.match(lines[0]!, pattern)
  assert.doesNotMatch(result.stderr, /\n\s+at /)
  assert.equal(result.stdout, '')
}

describe('kad-discovery arguments', function () {
  this.timeout(30_000)
  const clis = new Clis()
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kad-cli-args-'))
  })

  afterEach(async () => { await clis.killAll() })

  after(async () => { await rm(dir, { recursive: true, force: true }) })

  describe('--help', () => {
    it('lists every command and exits 0', async () => {
      const result = await clis.run(['--help'])
      assert.equal(result.code, 0)
      for (const command of ['demo', 'node', 'crawl']) {
        assert.match(result.stdout, new RegExp(`\\n  ${command} `))
      }
    })

    for (const command of ['demo', 'node', 'crawl']) {
      it(`describes ${command} and exits 0`, async () => {
        const result = await clis.run([command, '--help'])
        assert.equal(result.code, 0)
        assert.match(result.stdout, new RegExp(`^Usage: kad-discovery ${command} `))
        assert.match(result.stdout, /Exit codes:/)
        assert.equal(result.stderr, '')
      })
    }

    it('prints the version', async () => {
      const result = await clis.run(['--version'])
      assert.equal(result.code, 0)
      assert.match(result.stdout, /^\d+\.\d+\.\d+/)
    })
  })

  describe('bad arguments exit 2 with one line', () => {
    it('no command', async () => {
      assertUsageError(await clis.run([]), /missing command/)
    })

    it('an unknown command', async () => {
      assertUsageError(await clis.run(['serve']), /unknown command 'serve'/)
    })

    it('an unknown option', async () => {
      assertUsageError(await clis.run(['demo', '--bogus']), /unknown option '--bogus'/)
    })

    it('an option without its value', async () => {
      assertUsageError(await clis.run(['demo', '--nodes']), /--nodes/)
    })

    it('a node count that is not a number, or too small', async () => {
      assertUsageError(await clis.run(['demo', '--nodes', 'many']), /--nodes many: expected a whole number from 2/)
      assertUsageError(await clis.run(['demo', '--nodes', '1']), /--nodes 1: expected a whole number from 2/)
    })

    it('an unknown transport', async () => {
      assertUsageError(await clis.run(['demo', '--transport', 'quic']), /--transport quic: expected memory or tcp/)
    })

    it('an unparsable bootnode multiaddr', async () => {
      assertUsageError(await clis.run(['node', '--bootnode', 'not-a-multiaddr']), /--bootnode not-a-multiaddr: not a valid multiaddr/)
    })

    it('a bootnode without /p2p/', async () => {
      assertUsageError(await clis.run(['node', '--bootnode', '/ip4/127.0.0.1/tcp/4001']), /no \/p2p\/<peer id>/)
    })

    it('a bootnode with a bad peer id', async () => {
      assertUsageError(await clis.run(['crawl', '--bootnode', '/ip4/127.0.0.1/tcp/4001/p2p/QmNotAPeerId']), /--bootnode/)
    })

    it('a listen address that is not TCP', async () => {
      assertUsageError(await clis.run(['node', '--listen', '/ip4/127.0.0.1/udp/4001']), /--listen .*: not a TCP address/)
    })

    it('a data directory that is a file', async () => {
      const file = join(dir, 'a-file')
      await writeFile(file, 'x')
      assertUsageError(await clis.run(['node', '--listen', '/ip4/127.0.0.1/tcp/0', '--data', file]), /--data .*a-file: not a directory/)
    })

    it('a data directory that cannot be made (a file in the way)', async () => {
      const file = join(dir, 'in-the-way')
      await writeFile(file, 'x')
      assertUsageError(await clis.run(['node', '--listen', '/ip4/127.0.0.1/tcp/0', '--data', join(file, 'data')]), /--data .*: cannot create the directory: .*ENOTDIR/)
    })

    it('crawl without a bootnode', async () => {
      assertUsageError(await clis.run(['crawl']), /crawl needs at least one --bootnode/)
    })

    it('a crawl output in a directory that does not exist', async () => {
      const out = join(dir, 'missing', 'nodes.json')
      assertUsageError(await clis.run(['crawl', '--bootnode', `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, '--out', out]), /--out .*does not exist/)
    })

    it('a crawl output that is a directory', async () => {
      assertUsageError(await clis.run(['crawl', '--bootnode', `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, '--out', dir]), /--out .*: is a directory/)
    })

    it('a timeout that is not a number of seconds', async () => {
      assertUsageError(await clis.run(['crawl', '--bootnode', `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, '--timeout', '0']), /--timeout 0: expected seconds/)
    })
  })
})
