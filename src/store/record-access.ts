import { decodeFields, encodeFields, nodeKey } from './records.js'
import type { CorruptReason, NodeDBStats, NodeFields } from './records.js'
import type { AbortOptions, Logger } from '@libp2p/interface'
import type { Datastore, Key } from 'interface-datastore'

/** A stored record that could not be used, and why. */
export interface Corrupt {
  key: Key
  reason: CorruptReason
}

/**
 * How the node database touches its datastore: one operation at a time (a queue, so a
 * read-modify-write never interleaves with another at an `await` and a scan sees a stable
 * store), node records read and written whole, and corrupt ones counted, logged and deleted
 * wherever they are met, so none ever stops the module.
 */
export class RecordAccess {
  readonly datastore: Datastore
  private readonly stats: NodeDBStats
  private readonly log: Logger
  // the tail of the operation queue; it never rejects, so one failure does not block the next
  private queue: Promise<void> = Promise.resolve()

  constructor (datastore: Datastore, stats: NodeDBStats, log: Logger) {
    this.datastore = datastore
    this.stats = stats
    this.log = log
  }

  /** Runs `fn` after every operation queued before it. */
  async exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn)
    this.queue = result.then(() => {}, () => {})
    return result
  }

  /** The value at `key`, undefined when there is none. */
  async getValue (key: Key, options?: AbortOptions): Promise<Uint8Array | undefined> {
    try {
      return await this.datastore.get(key, options)
    } catch (err: any) {
      if (err?.name === 'NotFoundError') {
        return undefined
      }
      throw err
    }
  }

  /**
   * A node's record, undefined if it has none. A corrupt one reads as none and is dropped,
   * or with `keepCorrupt` only counted, because the caller is about to overwrite it.
   */
  async read (name: string, opts: { keepCorrupt?: boolean } = {}): Promise<NodeFields | undefined> {
    const key = nodeKey(name)
    const value = await this.getValue(key)
    if (value == null) {
      return undefined
    }
    const fields = decodeFields(value)
    if (typeof fields !== 'string') {
      return fields
    }
    if (opts.keepCorrupt === true) {
      this.countCorrupt({ key, reason: fields })
    } else {
      await this.dropCorrupt([{ key, reason: fields }])
    }
    return undefined
  }

  /** Writes a node's record whole. */
  async write (name: string, fields: NodeFields): Promise<void> {
    await this.datastore.put(nodeKey(name), encodeFields(fields))
  }

  /**
   * Counts, logs and deletes corrupt records in one batch; a failed delete is only logged,
   * as the record will be met (and counted) again.
   */
  async dropCorrupt (corrupt: Corrupt[]): Promise<void> {
    if (corrupt.length === 0) {
      return
    }
    const batch = this.datastore.batch()
    for (const entry of corrupt) {
      this.countCorrupt(entry)
      batch.delete(entry.key)
    }
    try {
      await batch.commit()
    } catch (err) {
      this.stats.failedDeletes += corrupt.length
      this.log.error('could not delete %d corrupt node records - %e', corrupt.length, err)
    }
  }

  /** Counts and logs a corrupt record without deleting it. */
  countCorrupt ({ key, reason }: Corrupt): void {
    this.stats.corruptRecords++
    this.stats[reason]++
    this.log.error('dropping corrupt node record %s (%s)', key.toString(), reason)
  }
}
