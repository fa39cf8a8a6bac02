import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { CliError, describeFsError } from './errors.js'
import type { Stats } from 'node:fs'

async function statOrUndefined (path: string): Promise<Stats | undefined> {
  try {
    return await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined
    }
    throw err
  }
}

/**
 * Tries a write: permission bits do not tell (root ignores them, a read-only mount
 * does not show in them), so the only sure test is to write a file and remove it.
 */
async function probeWrite (dir: string): Promise<void> {
  const probe = join(dir, `.kad-discovery-probe-${process.pid}`)
  await writeFile(probe, '')
  await rm(probe, { force: true })
}

/**
 * Makes sure `dir` is a directory this process can write, creating it when missing:
 * before any node starts, so a bad `--data` is one clear line, not a failure later.
 */
export async function prepareDirectory (flag: string, dir: string): Promise<void> {
  try {
    const found = await statOrUndefined(dir)
    if (found != null && !found.isDirectory()) {
      throw new CliError(`${flag} ${dir}: not a directory`)
    }
    if (found == null) {
      await mkdir(dir, { recursive: true })
    }
  } catch (err) {
    if (err instanceof CliError) {
      throw err
    }
    throw new CliError(`${flag} ${dir}: cannot create the directory: ${describeFsError(err)}`)
  }
  try {
    await probeWrite(dir)
  } catch (err) {
    throw new CliError(`${flag} ${dir}: not writable: ${describeFsError(err)}`)
  }
}

/**
 * Makes sure `file` can be written later: its directory exists and takes a write, and
 * it is not a directory itself. Nothing is left behind.
 */
export async function checkOutputFile (flag: string, file: string): Promise<void> {
  const dir = dirname(file)
  try {
    const target = await statOrUndefined(file)
    if (target?.isDirectory() === true) {
      throw new CliError(`${flag} ${file}: is a directory`)
    }
    const parent = await statOrUndefined(dir)
    if (parent == null || !parent.isDirectory()) {
      throw new CliError(`${flag} ${file}: the directory ${dir} does not exist`)
    }
    await probeWrite(dir)
  } catch (err) {
    if (err instanceof CliError) {
      throw err
    }
    throw new CliError(`${flag} ${file}: not writable: ${describeFsError(err)}`)
  }
}

/** Writes `text` to a temporary file beside `file`, then renames it: readers never see half a file. */
export async function writeFileAtomic (file: string, text: string): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`)
  try {
    await writeFile(temporary, text)
    await rename(temporary, file)
  } catch (err) {
    await rm(temporary, { force: true })
    throw err
  }
}
