/**
 * Node 20 lacks `Promise.withResolvers` (added in Node 22), which libp2p 3 calls.
 * The CLI, tests and benchmarks import this module first; library users on Node 20
 * do the same (see the README).
 */
interface Resolvers<T> {
  promise: Promise<T>
  resolve(value: T | PromiseLike<T>): void
  reject(reason?: unknown): void
}

const PromiseWithResolvers = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }

if (typeof PromiseWithResolvers.withResolvers !== 'function') {
  PromiseWithResolvers.withResolvers = function withResolvers<T> (): Resolvers<T> {
    const resolvers: Partial<Resolvers<T>> = {}
    resolvers.promise = new Promise<T>((resolve, reject) => {
      resolvers.resolve = resolve
      resolvers.reject = reject
    })
    return resolvers as Resolvers<T>
  }
}

export {}
