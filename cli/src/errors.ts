/** Exit codes of every command (docs/CLI.md lists them). */
export const ExitCode = {
  /** The command did its job. */
  Ok: 0,
  /** It ran but failed: nothing was discovered, a port was taken, a stop timed out. */
  Failure: 1,
  /** Bad arguments or an unusable path, found before anything started. */
  Usage: 2,
  /** Stopped by Ctrl-C (128 + SIGINT) before it finished on its own (demo, crawl). */
  Interrupted: 130
} as const

/**
 * An error meant for the user: the top level prints its message as one line,
 * `kad-discovery: <message>`, with no stack trace, and exits with `exitCode`.
 */
export class CliError extends Error {
  override readonly name = 'CliError'
  /** The process exit code. */
  readonly exitCode: number

  constructor (message: string, exitCode: number = ExitCode.Usage) {
    super(message)
    this.exitCode = exitCode
  }
}

// node's fs error codes in words a user acts on
const FS_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on the device',
  EEXIST: 'it already exists'
}

/** One short phrase for a file system error: its reason in words, or its first line. */
export function describeFsError (err: unknown): string {
  const code = (err as { code?: unknown })?.code
  if (typeof code === 'string' && FS_REASONS[code] != null) {
    return `${FS_REASONS[code]} (${code})`
  }
  return firstLine(err)
}

/** The first line of an error's message, for one-line reports. */
export function firstLine (err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0]?.trim() ?? ''
}
