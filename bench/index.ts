import '../src/polyfill.js'
import './logger-colors.js'
import { readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

// Runs every `*.bench.js` beside this file, one after the other, or those named on the
// command line (`npm run bench -- table store`).
const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
const files = (await readdir(dir)).filter(f => f.endsWith('.bench.js')).sort()
for (const file of files) {
  if (only.length > 0 && !only.some(name => file.startsWith(name))) {
    continue
  }
  const mod = await import(new URL(file, import.meta.url).href) as { run(): Promise<void> }
  console.log(`\n## ${file.replace('.bench.js', '')}\n`)
  await mod.run()
}
