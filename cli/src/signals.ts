import { ExitCode } from './errors.js'

/** A stop request from the user: SIGINT (Ctrl-C) or SIGTERM. */
export interface StopRequest {
  /** Aborted by the first signal. */
  readonly signal: AbortSignal
  /** The signal that arrived, once one has. */
  readonly received: NodeJS.Signals | undefined
  /** Removes the handlers (the command is done). */
  dispose(): void
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']

/**
 * Turns SIGINT and SIGTERM into an aborted signal, so a command stops its nodes cleanly
 * instead of dying. A second signal during that clean stop exits at once: a user who
 * presses Ctrl-C twice means it.
 */
export function listenForStop (): StopRequest {
  const controller = new AbortController()
  let received: NodeJS.Signals | undefined
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received != null) {
      process.stderr.write(`kad-discovery: ${signal} again, exiting without a clean stop\n`)
      process.exit(ExitCode.Interrupted)
    }
    received = signal
    controller.abort(new Error(`stopped by ${signal}`))
  }
  for (const name of SIGNALS) {
    process.on(name, onSignal)
  }
  return {
    signal: controller.signal,
    get received () { return received },
    dispose: () => {
      for (const name of SIGNALS) {
        process.off(name, onSignal)
      }
    }
  }
}

/** Waits `ms`, or less when `signal` aborts first; never throws. */
export async function pause (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) {
    return
  }
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * A signal aborted after `ms` or with `parent`. Our own timer, not `AbortSignal.timeout`:
 * inside `AbortSignal.any` the timeout signal can be garbage collected before it fires
 * (nodejs/node#57736), and a lookup would then run unbounded.
 */
export function deadlineSignal (ms: number, parent: AbortSignal): { signal: AbortSignal, clear(): void } {
  const controller = new AbortController()
  const onAbort = (): void => { controller.abort(parent.reason) }
  const timer = setTimeout(() => { controller.abort(new Error(`timed out after ${ms} ms`)) }, ms)
  if (parent.aborted) {
    onAbort()
  }
  parent.addEventListener('abort', onAbort, { once: true })
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      parent.removeEventListener('abort', onAbort)
    }
  }
}
