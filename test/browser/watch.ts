/**
 * What the page's watch reports: what is still running, whoever started it. Read from the
 * test through `globalThis.kadWatch`.
 */
export interface PageWatch {
  /** The creation stack of every timer neither fired nor cleared yet. */
  pendingTimers(): string[]
  /** How many WebSockets the page opened that are not closed. */
  openSockets(): number
}

declare global {
  var kadWatch: PageWatch | undefined
}

/**
 * An init script (`page.addInitScript(installWatch)`): it runs in the page before any of
 * the page's own code, so the timers and WebSockets libp2p and the library create go
 * through it, even those of code that keeps its own reference to `setTimeout`. Playwright
 * sends the function's source, so it must not refer to anything outside itself.
 */
export function installWatch (): void {
  // BOUNDED: timers not yet fired or cleared; each leaves when it fires or is cleared
  const timers = new Map<unknown, string>()
  // BOUNDED: the sockets of one test page
  const sockets = new Set<WebSocket>()
  const stack = (): string => new Error('timer created').stack ?? ''
  // the page's timers, typed loosely: the compiler also sees Node's, whose ids are objects
  const timerApi = globalThis as unknown as Record<'setTimeout' | 'setInterval' | 'clearTimeout' | 'clearInterval', (...args: any[]) => unknown>
  // bound: a browser's timer functions throw when called on anything but the window
  const native = {
    setTimeout: timerApi.setTimeout.bind(globalThis),
    setInterval: timerApi.setInterval.bind(globalThis),
    clearTimeout: timerApi.clearTimeout.bind(globalThis),
    clearInterval: timerApi.clearInterval.bind(globalThis)
  }

  timerApi.setTimeout = (handler: unknown, ms?: number, ...args: unknown[]) => {
    const id = native.setTimeout(() => {
      timers.delete(id)
      if (typeof handler === 'function') {
        handler(...args)
      }
    }, ms)
    timers.set(id, stack())
    return id
  }
  timerApi.setInterval = (handler: unknown, ms?: number, ...args: unknown[]) => {
    const id = native.setInterval(handler, ms, ...args)
    timers.set(id, stack())
    return id
  }
  for (const clear of ['clearTimeout', 'clearInterval'] as const) {
    timerApi[clear] = (id?: unknown) => {
      timers.delete(id)
      return native[clear](id)
    }
  }

  const NativeWebSocket = globalThis.WebSocket
  globalThis.WebSocket = class WatchedWebSocket extends NativeWebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      super(url, protocols)
      sockets.add(this)
    }
  }

  globalThis.kadWatch = {
    pendingTimers: () => [...timers.values()],
    openSockets: () => [...sockets].filter(s => s.readyState !== NativeWebSocket.CLOSED).length
  }
}
