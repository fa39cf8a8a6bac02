/** What a scenario run measured: flat, printable figures. */
export type Figures = Record<string, number | string | boolean>

/**
 * One reliability scenario: the same function runs small in its spec (`fast`, asserted
 * by `check`) and at full size in `npm run scenarios` (`full`, printed with the verdict).
 */
export interface Scenario<S, F extends Figures> {
  /** A short name: the spec and the runner's `--only` use it. */
  name: string
  /** One line on what it proves. */
  title: string
  /** The size the spec runs. */
  fast: S
  /** The size the runner runs. */
  full: S
  /** Runs the scenario at `size`; `log` gets progress lines. Always cleans up. */
  run(size: S, log?: (line: string) => void): Promise<F>
  /** Every claim of the scenario that `figures` break, each `tag: what`; empty when all hold. */
  check(figures: F, size: S): string[]
  /**
   * Tags of claims that fail because of a bug in src/ not fixed yet: the spec leaves them
   * out, the runner prints them, `findings.ts` has a repro of each. Emptied by the fix.
   */
  knownFailures?: string[]
}

/** Whether `failure` (from `check`) is a claim the scenario lists as a known failure. */
export function isKnown (scenario: Scenario<any, any>, failure: string): boolean {
  return (scenario.knownFailures ?? []).some(tag => failure.startsWith(`${tag}: `))
}

/**
 * Collects the claims that fail: `claim(tag, ok, what)` keeps `tag: what` when `ok` is
 * false. The tag names the claim, so a known failure can be told apart.
 */
export class Claims {
  // BOUNDED: one per claim a check makes
  readonly failed: string[] = []

  claim (tag: string, ok: boolean, what: string): this {
    if (!ok) {
      this.failed.push(`${tag}: ${what}`)
    }
    return this
  }
}

/** A run of `fn` that logs nothing. */
export const quiet = (): void => {}
