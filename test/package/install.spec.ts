import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kadDiscovery } from '../../src/index.js'
import { TestNodes } from '../utils/libp2p.js'
import type { KadDiscovery } from '../../src/index.js'
import type { TestNode } from '../utils/libp2p.js'

// this file runs as dist/test/package/install.spec.js
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

// what a user of the README's "Use" example installs besides our two packages, at the
// versions this repository tests with (so the install comes from the local npm cache)
const USER_PACKAGES = ['libp2p', '@libp2p/identify', '@libp2p/tcp', '@chainsafe/libp2p-noise', '@libp2p/yamux', 'datastore-level', 'typescript', '@types/node']

// the README example's placeholders, replaced by the test's bootnode and by loopback:
// tests never listen beyond 127.0.0.1
const BOOTNODE_PLACEHOLDER = '/ip4/203.0.113.7/tcp/4001/p2p/12D3Koo...'
const LISTEN_PLACEHOLDER = '/ip4/0.0.0.0/tcp/0'

// a user's ordinary tsconfig. No skipLibCheck, so our declaration files are checked too
// (an import in them that does not resolve would otherwise pass as `any`). TypeScript 6
// no longer loads @types packages unless `types` names them; ES2024 because yamux's own
// declarations use PromiseWithResolvers.
const USER_TSCONFIG = {
  compilerOptions: { target: 'ES2024', module: 'NodeNext', strict: true, types: ['node'], outDir: 'build' },
  include: ['*.ts']
}

interface Output { stdout: string, stderr: string }

/** The node_modules/.bin folders `npm run` puts on PATH: this repository's and its parents'. */
function repositoryBins (): Set<string> {
  const bins = new Set<string>()
  for (let dir = ROOT; ; dir = dirname(dir)) {
    bins.add(join(dir, 'node_modules', '.bin'))
    if (dirname(dir) === dir) {
      return bins
    }
  }
}

/**
 * The environment a user's shell would give: without what `npm test` adds (npm_* settings
 * and this repository's node_modules/.bin on PATH), so the scratch app sees only itself.
 * The rest of PATH stays: CI puts the Node it tests with first.
 */
function userEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_') && key !== 'INIT_CWD') {
      env[key] = value
    }
  }
  const bins = repositoryBins()
  env.PATH = (process.env.PATH ?? '').split(delimiter).filter(dir => !bins.has(join(dir))).join(delimiter)
  return env
}

/** Runs a command to its end, killed after `timeout` ms; fails with its output. */
async function run (file: string, args: string[], cwd: string, timeout: number): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout, env: userEnv(), maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err != null) {
        reject(new Error(`${file} ${args.join(' ')} failed in ${cwd}: ${err.message}\n${stdout}\n${stderr}`))
      } else {
        resolve({ stdout, stderr })
      }
    })
  })
}

/** `npm pack` of the package in `dir` into `into`; the tarball's path. */
async function pack (dir: string, into: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', into], dir, 60_000)
  const [packed] = JSON.parse(stdout) as Array<{ filename: string }>
  assert.ok(packed != null, `npm pack in ${dir} packed nothing`)
  return join(into, packed.filename)
}

async function versionOf (name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  return manifest.version
}

/** The first ```ts block after `heading` in the README. */
function codeBlockAfter (readme: string, heading: string): string {
  const section = readme.slice(readme.indexOf(heading))
  const block = /```ts\n([\s\S]*?)```/.exec(section)
  assert.ok(readme.includes(heading) && block?.[1] != null, `no TypeScript block under ${heading} in the README`)
  return block[1]
}

/** The @example of src/index.ts (the API docs' landing page), as plain code. */
function apiExample (source: string): string {
  const block = /```ts\n([\s\S]*?)\s*\*\s*```/.exec(source)
  assert.ok(block?.[1] != null, 'no @example in src/index.ts')
  return block[1].split('\n').map(line => line.replace(/^\s*\* ?/, '')).join('\n')
}

/** Every module a text names in an import (`import … from 'x'`, `import 'x'`), local paths left out. */
function importsIn (text: string): string[] {
  return [...text.matchAll(/(?:from|import)\s+'([^'.][^']*)'/g)].map(m => m[1]!)
}

describe('the packages as a user installs them (npm pack, then npm install in a scratch app)', function () {
  // npm install from the local cache takes about a minute; from the registry, longer
  this.timeout(10 * 60_000)
  const nodes = new TestNodes()
  let scratch: string
  let app: string
  let boot: TestNode<{ discovery: KadDiscovery }>

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'kad-discovery-install-'))
    app = join(scratch, 'app')
    const library = await pack(ROOT, scratch)
    const cli = await pack(join(ROOT, 'cli'), scratch)
    const versions = await Promise.all(USER_PACKAGES.map(async name => `${name}@${await versionOf(name)}`))
    await mkdir(app)
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2))
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', library, cli, ...versions], app, 5 * 60_000)
    boot = await nodes.create({ transport: 'tcp', encryption: 'noise', services: { discovery: kadDiscovery() } })
  })

  after(async () => {
    await nodes.stop()
    if (scratch != null) {
      await rm(scratch, { recursive: true, force: true })
    }
  })

  it('installs both packages with the licence texts their manifests name', async () => {
    for (const name of ['libp2p-kad-discovery', 'libp2p-kad-discovery-cli']) {
      const dir = join(app, 'node_modules', name)
      const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { license: string }
      assert.equal(manifest.license, 'Apache-2.0 OR MIT')
      assert.match(await readFile(join(dir, 'LICENSE-APACHE'), 'utf8'), /Apache License\s+Version 2\.0/)
      assert.match(await readFile(join(dir, 'LICENSE-MIT'), 'utf8'), /Permission is hereby granted, free of charge/)
    }
  })

  it('resolves every module the README, the docs and the API example import', async () => {
    const texts = [await readFile(join(ROOT, 'README.md'), 'utf8'), await readFile(join(ROOT, 'src', 'index.ts'), 'utf8')]
    for (const doc of await readdir(join(ROOT, 'docs'))) {
      if (doc.endsWith('.md')) {
        texts.push(await readFile(join(ROOT, 'docs', doc), 'utf8'))
      }
    }
    const modules = [...new Set(texts.flatMap(importsIn))].sort()
    assert.ok(modules.includes('libp2p-kad-discovery') && modules.includes('libp2p-kad-discovery/polyfill'), modules.join(' '))
    const script = `for (const m of ${JSON.stringify(modules)}) await import(m)`
    await run(process.execPath, ['--input-type=module', '--eval', script], app, 60_000)
  })

  it('type-checks the README example and the API example with a user\'s strict NodeNext tsconfig, and the README example finds a bootnode', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    const use = codeBlockAfter(readme, '## Use')
    assert.ok(use.includes(BOOTNODE_PLACEHOLDER) && use.includes(LISTEN_PLACEHOLDER), 'the README example\'s addresses changed: update this test')
    const bootnode = boot.getMultiaddrs()[0]!.toString()
    const example = use.replace(BOOTNODE_PLACEHOLDER, bootnode).replace(LISTEN_PLACEHOLDER, '/ip4/127.0.0.1/tcp/0') + [
      '',
      '// added by the test: what the example found, then a clean stop',
      'console.log(JSON.stringify({ closest: closest.map(p => p.id.toString()), random: random.map(p => p.id.toString()) }))',
      'await node.stop()',
      'await datastore.close()',
      ''
    ].join('\n')
    await writeFile(join(app, 'example.ts'), example)
    await writeFile(join(app, 'api-example.ts'), apiExample(await readFile(join(ROOT, 'src', 'index.ts'), 'utf8')))
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify(USER_TSCONFIG, null, 2))
    await run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], app, 120_000)

    const { stdout } = await run(process.execPath, [join('build', 'example.js')], app, 60_000)
    const result = JSON.parse(stdout.split('\n').filter(line => line.startsWith('{')).at(-1) ?? '{}') as { closest?: string[], random?: string[] }
    const id = boot.peerId.toString()
    assert.deepEqual(result.closest, [id], stdout)
    assert.deepEqual(result.random, [id], stdout)
  })

  it('runs the installed kad-discovery command: --help, --version, and a crawl that finds the bootnode', async () => {
    // `npx --no --`: never fetch a package of that name, and pass every option to the command
    const help = await run('npx', ['--no', '--', 'kad-discovery', '--help'], app, 60_000)
    assert.match(help.stdout, /^Usage: kad-discovery <command>/)
    const version = await run('npx', ['--no', '--', 'kad-discovery', '--version'], app, 60_000)
    const manifest = JSON.parse(await readFile(join(ROOT, 'cli', 'package.json'), 'utf8')) as { version: string }
    assert.equal(version.stdout.trim(), manifest.version)
    const crawl = await run('npx', ['--no', '--', 'kad-discovery', 'crawl', '--bootnode', boot.getMultiaddrs()[0]!.toString(), '--out', '-', '--timeout', '30'], app, 60_000)
    const found = JSON.parse(crawl.stdout) as { nodes: Array<{ id: string, answered: boolean }> }
    assert.ok(found.nodes.some(n => n.id === boot.peerId.toString() && n.answered), crawl.stdout)
  })
})
