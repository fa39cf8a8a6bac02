#!/usr/bin/env node
// first: Node 20 lacks Promise.withResolvers, which libp2p 3 calls
import 'libp2p-kad-discovery/polyfill'
// before libp2p loads: its logger's colour decision, taken once
import './logger-colors.js'
import { setMaxListeners } from 'node:events'
import { readFile } from 'node:fs/promises'
import { parseCommandLine } from './args.js'
import { CliError, ExitCode, firstLine } from './errors.js'
import { helpText } from './help.js'
import type { Invocation } from './args.js'

/**
 * `kad-discovery <command>`: parses the arguments, then loads only the command asked
 * for, so `--help` and argument errors answer without loading libp2p.
 */
async function main (argv: string[]): Promise<number> {
  const invocation: Invocation = parseCommandLine(argv)
  switch (invocation.command) {
    case 'help':
      process.stdout.write(`${helpText(invocation.topic)}\n`)
      return ExitCode.Ok
    case 'version':
      process.stdout.write(`${await version()}\n`)
      return ExitCode.Ok
    case 'demo': {
      const { runDemo } = await import('./demo.js')
      return runDemo(invocation.options)
    }
    case 'node': {
      const { runNode } = await import('./node.js')
      return runNode(invocation.options)
    }
    case 'crawl': {
      const { runCrawl } = await import('./crawl.js')
      return runCrawl(invocation.options)
    }
  }
}

async function version (): Promise<string> {
  // dist/src/index.js → this package's root
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }
  return pkg.version ?? 'unknown'
}

/** One line on stderr, no stack trace (unless DEBUG is set, for a bug report). */
function report (err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(`kad-discovery: ${err.message}\n`)
    return err.exitCode
  }
  process.stderr.write(`kad-discovery: ${firstLine(err)}\n`)
  if (process.env.DEBUG != null && err instanceof Error) {
    process.stderr.write(`${err.stack ?? ''}\n`)
  }
  return ExitCode.Failure
}

/** Exits once stdout has taken everything written (a pipe may lag behind). */
function exit (code: number): void {
  process.stdout.write('', () => process.exit(code))
}

// libp2p and the service hang many short waits on one long-lived signal (every dial, every
// sleep): that is no leak, but node's default limit of 10 would warn about it on stderr
setMaxListeners(Infinity)

// a reader that went away (`kad-discovery node --json | head -1`) is no error of ours: a
// running command stops as on SIGTERM (cleanly, its database closed), anything else exits
let readerGone = false
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') {
    process.exit(ExitCode.Failure)
  }
  if (readerGone) {
    return
  }
  readerGone = true
  if (process.listenerCount('SIGTERM') > 0) {
    process.kill(process.pid, 'SIGTERM')
  } else {
    process.exit(ExitCode.Ok)
  }
})

// libp2p's muxer can throw from a microtask when a connection closes under a stream's
// window update (yamux `sendWindowUpdate` on a closed stream: StreamStateError). That is a
// race inside libp2p, not a fault of the command: it is logged under DEBUG and ignored;
// any other uncaught error is reported as one line and fails the command
process.on('uncaughtException', (err: Error) => {
  if (err?.name === 'StreamStateError') {
    if (process.env.DEBUG != null) {
      process.stderr.write(`kad-discovery: ignored a libp2p stream race - ${err.message}\n`)
    }
    return
  }
  exit(report(err))
})

main(process.argv.slice(2)).then(exit, err => { exit(report(err)) })
