import { multiaddr } from '@multiformats/multiaddr'
import { Message } from '../../../src/protocol/pb/message.js'
import { seededRandom } from '../../../src/table/random.js'
import { FRAME_KINDS, FrameFuzzer } from '../utils/frames.js'
import { NodeGroup } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { contentChanges } from '../utils/table.js'
import { aftermath, aftermathClaims, heapBaseline, startChildVictim } from '../utils/victim.js'
import { ProcessWatch } from '../utils/watch.js'
import { sendRaw, sendRequest } from '../utils/wire.js'
import type { ChildNode } from '../utils/child.js'
import type { Scenario } from '../utils/scenario.js'
import type { Aftermath } from '../utils/victim.js'
import type { Connection, Libp2p } from '@libp2p/interface'

/** How much fuzzing. */
export interface FuzzSize {
  /** Fuzzed frames, one per stream, after the warm-up. */
  frames: number
  /** Fuzzed frames sent before the heap baseline is taken. */
  warmup: number
  /** Nodes sending them (all in the victim's table). */
  senders: number
  /** Streams each sender keeps open at once (under the victim's 16 per connection). */
  concurrency: number
}

/** What the fuzzing came to. */
export interface FuzzFigures extends Aftermath {
  frames: number
  warmup: number
  kinds: number
  answered: number
  reset: number
  leftOpen: number
  refusedStreams: number
  serverInvalid: number
  serverOtherEnds: number
  tableChanges: number
  firstChange: string
  answersAfterRun: boolean
  rejections: number
}

/**
 * Fuzzing the protocol handler. A victim node in its own process, whose table holds the
 * sending nodes (so a frame that happens to be a valid request changes nothing: it only
 * proves a known node alive again), takes `frames` fuzzed frames, one per stream, with
 * its rate limits lifted so every frame reaches the decoder (the flood scenario tests the
 * limits). Afterwards: the process runs, nothing rejected or threw unhandled, the table
 * is the same nodes at the same addresses, no stream or request is left, the heap is back
 * to its baseline, and the node still answers.
 */
export async function runFuzz (size: FuzzSize, log: (line: string) => void = quiet): Promise<FuzzFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  let victim: ChildNode | undefined
  try {
    const started = await startChildVictim(group, size.senders + 1, { liftRateLimit: true })
    victim = started.victim
    const senders = started.peers.slice(1)
    const victimAddr = multiaddr(victim.addrs[0]!)
    log(`victim ${victim.peerId} holds its ${started.peers.length} peers`)

    const fuzzer = new FrameFuzzer(seededRandom(1234))
    const outcomes: Record<string, number> = {}
    let next = 0
    let end = 0
    let refusedStreams = 0
    const worker = async (sender: Libp2p): Promise<void> => {
      let connection: Connection | undefined
      while (next < end) {
        const i = next++
        const bytes = fuzzer.make(FRAME_KINDS[i % FRAME_KINDS.length]!)
        // a connection may close under the sender: its own discovery client's, or the
        // victim's request connection (a revalidation ping dials the sender), which the
        // sender's libp2p hands out too and which still reads 'open' while it closes; after a
        // refusal, resend over a connection of the sender's own
        let refused = false
        for (let attempt = 0; attempt < 3; attempt++) {
          if (refused || connection?.status !== 'open') {
            connection = await sender.dial(victimAddr, { signal: AbortSignal.timeout(10_000), force: refused })
          }
          const outcome = await sendRaw(connection, bytes, 10_000)
          if (outcome !== 'refused') {
            outcomes[outcome] = (outcomes[outcome] ?? 0) + 1
            break
          }
          refused = true
          refusedStreams++
        }
        if (i % 2000 === 1999) {
          log(`${i + 1} frames sent`)
        }
      }
    }
    const fuzzFrames = async (): Promise<void> => {
      await Promise.all(senders.flatMap(sender => Array.from({ length: size.concurrency }, async () => worker(sender))))
    }
    // a warm-up first: code paths compiled and caches filled for the first time are not a leak
    end = size.warmup
    await fuzzFrames()
    const baseline = await heapBaseline(victim)
    const before = (await victim.stats()).server
    end = size.warmup + size.frames
    await fuzzFrames()
    const { stats: after, figures: left } = await aftermath(victim, baseline)
    const changes = contentChanges(started.table, new Map(after.table))
    const delta = (key: string): number => (after.server[key] ?? 0) - (before[key] ?? 0)
    const keys = Object.keys(after.server)
    let answersAfterRun = false
    try {
      const connection = await senders[0]!.dial(victimAddr, { signal: AbortSignal.timeout(10_000) })
      const answer = await sendRequest(connection, { type: Message.Type.FIND_NODE, target: new Uint8Array(32), peers: [] })
      answersAfterRun = answer.type === Message.Type.NODES && answer.peers.length > 0
    } catch {}
    return {
      frames: size.frames,
      warmup: size.warmup,
      kinds: FRAME_KINDS.length,
      answered: outcomes.closed ?? 0,
      reset: outcomes.reset ?? 0,
      leftOpen: outcomes.open ?? 0,
      refusedStreams,
      serverInvalid: keys.filter(k => k.startsWith('invalid.')).reduce((n, k) => n + delta(k), 0),
      serverOtherEnds: delta('error') + delta('timeout') + delta('unclosed') + delta('aborted'),
      tableChanges: changes.length,
      firstChange: changes[0] ?? '',
      answersAfterRun,
      ...left,
      rejections: watch.rejections.length
    }
  } finally {
    await victim?.stop()
    watch.stop()
    await group.stop()
  }
}

/** The claims of the fuzz scenario. */
export function checkFuzz (f: FuzzFigures): string[] {
  const claims = new Claims()
    .claim('all-tried', f.answered + f.reset + f.leftOpen === f.frames + f.warmup, `only ${f.answered + f.reset + f.leftOpen} of ${f.frames + f.warmup} frames were tried`)
    .claim('streams-ended', f.leftOpen === 0, `${f.leftOpen} streams were never ended by the victim`)
    .claim('table-unchanged', f.tableChanges === 0, `the table changed: ${f.firstChange}`)
    .claim('still-answers', f.answersAfterRun, 'the victim no longer answers FIND_NODE')
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections here`)
  return aftermathClaims(claims, f).failed
}

/** Fuzzed frames against a node's protocol handler. */
export const fuzz: Scenario<FuzzSize, FuzzFigures> = {
  name: 'fuzz',
  title: 'fuzzed frames against the protocol handler',
  fast: { frames: 2000, warmup: 500, senders: 3, concurrency: 4 },
  full: { frames: 12_000, warmup: 1000, senders: 4, concurrency: 6 },
  run: runFuzz,
  check: checkFuzz
}
