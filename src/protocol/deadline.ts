/** A signal that aborts after `ms` or with any of `parents`; `clear()` releases it. */
export interface Deadline {
  /** Aborts with a `reason` from `onTimeout` or from the parent that aborted first. */
  readonly signal: AbortSignal
  /** Stops the timer and detaches from the parents: call it once the work is done. */
  clear(): void
}

/**
 * A per-operation deadline built by hand rather than with `AbortSignal.any`, whose
 * dependants a long-lived parent (the client's shutdown signal) kept alive on Node 20;
 * this one detaches from its parents when cleared.
 */
export function deadline (ms: number, onTimeout: () => Error, ...parents: Array<AbortSignal | undefined>): Deadline {
  // no setMaxListeners here: it costs ~30 µs a call on Node 20, more than the rest of
  // a deadline, and libp2p removes its listener after each await, so few are ever attached
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(onTimeout()) }, ms)
  const listeners: Array<[AbortSignal, () => void]> = []
  for (const parent of parents) {
    if (parent == null) {
      continue
    }
    if (parent.aborted) {
      controller.abort(parent.reason)
      break
    }
    const listener = (): void => { controller.abort(parent.reason) }
    parent.addEventListener('abort', listener, { once: true })
    listeners.push([parent, listener])
  }
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      for (const [parent, listener] of listeners) {
        parent.removeEventListener('abort', listener)
      }
    }
  }
}

/** Anything with DOM-style listeners: streams, connections, libp2p's event bus. */
export interface Listenable {
  /** Adds `listener` for `type`. */
  addEventListener(type: string, listener: (evt: any) => void): void
  /** Removes it again. */
  removeEventListener(type: string, listener: (evt: any) => void): void
}

/**
 * Resolves `true` when one of `targets` emits `type` (and `accept`, if given, takes the
 * event), or `false` once `signal` aborts first; every listener is removed either way.
 */
export async function nextEvent (targets: Listenable[], type: string, signal: AbortSignal, accept?: (evt: any) => boolean): Promise<boolean> {
  if (signal.aborted) {
    return false
  }
  return new Promise<boolean>(resolve => {
    const settle = (result: boolean): void => {
      for (const target of targets) {
        target.removeEventListener(type, onEvent)
      }
      signal.removeEventListener('abort', onAbort)
      resolve(result)
    }
    const onEvent = (evt: any): void => {
      if (accept == null || accept(evt)) {
        settle(true)
      }
    }
    const onAbort = (): void => { settle(false) }
    for (const target of targets) {
      target.addEventListener(type, onEvent)
    }
    signal.addEventListener('abort', onAbort)
  })
}
