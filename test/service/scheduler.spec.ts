import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { Scheduler } from '../../src/service/scheduler.js'
import { waitFor } from '../utils/libp2p.js'

describe('Scheduler', () => {
  it('runs a task when due, never twice at once, and re-arms it from the end of each run', async () => {
    const errors: unknown[] = []
    const scheduler = new Scheduler<'slow'>(Date.now, (_task, err) => { errors.push(err) })
    let running = 0
    let maxRunning = 0
    let runs = 0
    scheduler.add('slow', {
      run: async () => {
        running++
        maxRunning = Math.max(maxRunning, running)
        await delay(30)
        running--
        runs++
      },
      // due again at once: only the end of the previous run may start the next
      next: now => now
    }, Date.now())
    scheduler.start()
    await waitFor(() => runs >= 3, 'three runs')
    await scheduler.stop()
    assert.equal(maxRunning, 1)
    assert.deepEqual(errors, [])
  })

  it('reports a failing task and keeps scheduling it', async () => {
    const errors: unknown[] = []
    const scheduler = new Scheduler<'failing'>(Date.now, (task, err) => { errors.push([task, (err as Error).message]) })
    let runs = 0
    scheduler.add('failing', {
      run: async () => {
        runs++
        throw new Error('boom')
      },
      next: now => now + 5
    }, Date.now())
    scheduler.start()
    await waitFor(() => runs >= 2, 'a second run after a failure')
    await scheduler.stop()
    assert.deepEqual(errors[0], ['failing', 'boom'])
  })

  it('runs nothing before start and nothing after stop, and leaves no timer armed', async () => {
    const scheduler = new Scheduler<'task'>(Date.now, () => {})
    let runs = 0
    scheduler.add('task', { run: async () => { runs++ }, next: now => now + 10 }, Date.now())
    await delay(30)
    assert.equal(runs, 0)
    scheduler.start()
    await waitFor(() => runs >= 1, 'the first run')
    await scheduler.stop()
    const after = runs
    assert.equal(scheduler.armed, false)
    await delay(50)
    assert.equal(runs, after)
  })

  it('waits for a run in flight when stopped', async () => {
    const scheduler = new Scheduler<'task'>(Date.now, () => {})
    let finished = false
    scheduler.add('task', {
      run: async () => {
        await delay(50)
        finished = true
      },
      next: now => now + 1000
    }, Date.now())
    scheduler.start()
    await delay(10)
    await scheduler.stop()
    assert.equal(finished, true)
  })

  it('sleeps until the time passes or the signal aborts', async () => {
    const scheduler = new Scheduler<'x'>(Date.now, () => {})
    await scheduler.sleep(5)
    const controller = new AbortController()
    const sleeping = scheduler.sleep(60_000, { signal: controller.signal })
    controller.abort()
    await assert.rejects(sleeping, { name: 'AbortError' })
  })
})
