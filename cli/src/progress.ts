/** The part of a write stream progress needs; a fake one in tests. */
export interface ProgressStream {
  /** Whether it is a terminal: a live line then, plain lines otherwise. */
  isTTY?: boolean
  /** The terminal's width; the live line is cut to it so it never wraps. */
  columns?: number
  /** Writes text as it is. */
  write(text: string): boolean
}

/** How progress is shown. */
export interface ProgressInit {
  /** Where to write. */
  stream: ProgressStream
  /** A live line (rewritten with `\r`) or plain lines. @default stream.isTTY */
  live?: boolean
  /** Plain mode prints an update at most this often, ms. @default 1000 */
  plainInterval?: number
  /** The clock. @default Date.now */
  now?: () => number
}

// ANSI "erase the whole line": the new text may be shorter than the old
const CLEAR_LINE = '\r\x1b[2K'

/**
 * Progress on a terminal or a pipe: on a terminal, one live line rewritten in place; when
 * the output is not a terminal (a log, a test, CI), a plain line at most every second, so
 * a log stays readable and carries no control characters.
 */
export class Progress {
  private readonly stream: ProgressStream
  private readonly plainInterval: number
  private readonly now: () => number
  /** Whether the live line is used. */
  readonly live: boolean
  private current = ''
  // live mode: the live line is on screen
  private onScreen = false
  // plain mode: `current` has been printed
  private printed = true
  private lastPlain = -Infinity

  constructor (init: ProgressInit) {
    this.stream = init.stream
    this.live = init.live ?? init.stream.isTTY === true
    this.plainInterval = init.plainInterval ?? 1000
    this.now = init.now ?? Date.now
  }

  /**
   * The state now. Live: redrawn at once. Plain: printed when `plainInterval` has passed
   * since the last plain line (`done()` prints the last state of a phase).
   */
  update (text: string): void {
    this.current = text
    if (this.live) {
      this.draw()
      return
    }
    this.printed = false
    const now = this.now()
    if (now - this.lastPlain >= this.plainInterval) {
      this.printPlain(now)
    }
  }

  /** A line that stays: printed above the live line (which is redrawn below it). */
  log (text: string): void {
    if (this.live && this.onScreen) {
      this.stream.write(`${CLEAR_LINE}${text}\n`)
      this.draw()
      return
    }
    this.stream.write(`${text}\n`)
  }

  /**
   * Ends a phase: the live line is ended, keeping its last state on screen; in plain
   * mode the last state is printed if it has not been, so every phase's end shows.
   */
  done (): void {
    if (this.live && this.onScreen) {
      this.stream.write('\n')
      this.onScreen = false
    } else if (!this.live && !this.printed) {
      this.printPlain(this.now())
    }
  }

  private printPlain (now: number): void {
    this.lastPlain = now
    this.printed = true
    this.stream.write(`${this.current}\n`)
  }

  private draw (): void {
    const width = this.stream.columns ?? 0
    // three columns short of the edge: some terminals wrap when the last column is
    // written, and the terminal echoes Ctrl-C as "^C" after the text
    const room = width - 3
    const text = room > 1 && this.current.length > room ? `${this.current.slice(0, room - 1)}…` : this.current
    this.stream.write(`${CLEAR_LINE}${text}`)
    this.onScreen = true
  }
}

/** Seconds since `start`, one decimal: `12.3s`. */
export function elapsed (start: number, now: number = Date.now()): string {
  return `${((now - start) / 1000).toFixed(1)}s`
}
