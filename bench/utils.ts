import { fileURLToPath } from 'node:url'

/** Whether this module was run directly (`node dist/bench/x.bench.js`), not imported. */
export function isMain (url: string): boolean {
  return process.argv[1] != null && fileURLToPath(url) === process.argv[1]
}

/** Result of timing one operation. */
export interface Timing {
  name: string
  opsPerSecond: number
  microsPerOp: number
}

/**
 * Runs `fn` repeatedly for about `ms` milliseconds after a warm-up and reports its rate.
 * Bounded in time: never more than warm-up + `ms`.
 */
export function measure (name: string, fn: (i: number) => void, ms = 1000): Timing {
  const warmUntil = performance.now() + Math.min(200, ms / 5)
  let i = 0
  while (performance.now() < warmUntil) {
    fn(i++)
  }
  let ops = 0
  const start = performance.now()
  const until = start + ms
  while (performance.now() < until) {
    for (let j = 0; j < 100; j++) {
      fn(i++)
    }
    ops += 100
  }
  const elapsed = performance.now() - start
  return { name, opsPerSecond: ops / (elapsed / 1000), microsPerOp: (elapsed * 1000) / ops }
}

/** Prints rows as an aligned text table. */
export function printTable (header: string[], rows: Array<Array<string | number>>): void {
  const cells = [header, ...rows.map(r => r.map(c => typeof c === 'number' ? formatNumber(c) : c))]
  const widths = header.map((_, i) => Math.max(...cells.map(r => String(r[i] ?? '').length)))
  for (const [n, row] of cells.entries()) {
    console.log(row.map((c, i) => String(c).padEnd(widths[i] ?? 0)).join('  '))
    if (n === 0) {
      console.log(widths.map(w => '-'.repeat(w)).join('  '))
    }
  }
}

function formatNumber (n: number): string {
  if (Number.isInteger(n)) {
    return n.toLocaleString('en-US')
  }
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(2)
}
