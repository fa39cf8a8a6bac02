/**
 * Errors of our own. Where `@libp2p/interface` has a class that fits
 * (`InvalidParametersError`, `InvalidMessageError`, `TimeoutError`, `NotStartedError`),
 * that class is used instead.
 */

/** A peer answered a request with a message of the wrong type. */
export class UnexpectedResponseError extends Error {
  /** The error's name, for `instanceof`-free checks. */
  static override name = 'UnexpectedResponseError'
  /** The error's name. */
  override name = 'UnexpectedResponseError'
}

/** A peer refused a request because we exceeded its rate limit, or we refused one of its. */
export class RateLimitedError extends Error {
  /** The error's name, for `instanceof`-free checks. */
  static override name = 'RateLimitedError'
  /** The error's name. */
  override name = 'RateLimitedError'
}

/** A record in the node database could not be decoded. */
export class CorruptRecordError extends Error {
  /** The error's name, for `instanceof`-free checks. */
  static override name = 'CorruptRecordError'
  /** The error's name. */
  override name = 'CorruptRecordError'
}
