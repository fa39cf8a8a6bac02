import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin'

// Mutation testing of the code whose logic the unit tests own (`npm run mutate`; README,
// "Mutation testing"). Not part of `npm test`: a full run takes minutes on two cores.

// The scope, in one place: the sources Stryker mutates, and the built unit specs that own
// them. Never the e2e or reliability suites (slow, and they own no single file's logic).
const scope = {
  mutate: [
    'src/table/**/*.ts',
    'src/service/iterative-lookup.ts',
    'src/protocol/rate-limiter.ts',
    'src/protocol/relay.ts',
    'src/store/records.ts',
    'src/store/record-access.ts',
    'src/store/node-db.ts'
  ],
  specs: [
    'dist/test/table/*.spec.js',
    'dist/test/service/iterative-lookup.spec.js',
    'dist/test/service/random-nodes.spec.js',
    'dist/test/protocol/rate-limiter.spec.js',
    'dist/test/protocol/relay.spec.js',
    'dist/test/store/*.spec.js'
  ]
}

/**
 * Logging is not behaviour: a mutant that empties a log message or a logger's name, or
 * drops a `log(...)` call, changes nothing a test (or a user) can rely on. This ignorer
 * reports every mutant inside `log(…)`, `this.log(…)`, `….log.error/trace(…)` and
 * `….forComponent(…)` as ignored, so the source needs no disable comments for them.
 * (`Math.log` is arithmetic, and stays mutated.)
 */
const ignoreLogging = {
  shouldIgnore (path) {
    if (!path.isCallExpression()) {
      return undefined
    }
    const callee = path.node.callee
    if (isLogger(callee) || (isLogger(callee.object) && ['error', 'trace'].includes(callee.property?.name))) {
      return 'logging: a log message or call is not behaviour'
    }
    if (callee.type === 'MemberExpression' && callee.property?.name === 'forComponent') {
      return 'logging: a logger\'s name is not behaviour'
    }
    return undefined
  }
}

function isLogger (node) {
  if (node?.type === 'Identifier') {
    return node.name === 'log'
  }
  return node?.type === 'MemberExpression' && node.object.type === 'ThisExpression' && node.property?.name === 'log'
}

// Stryker loads plugins by module: this file is its own plugin module
export const strykerPlugins = [declareValuePlugin(PluginKind.Ignore, 'logging', ignoreLogging)]

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: scope.mutate,
  plugins: ['@stryker-mutator/*', './stryker.config.mjs'],
  ignorers: ['logging'],
  // tests run on the built output: Stryker instruments src/ in its sandbox, tsc builds it
  // once (every mutant is in the build, switched on at run time), mocha runs dist/
  buildCommand: 'tsc -p tsconfig.json',
  testRunner: 'mocha',
  // mutants that do not type-check (an optional chain dropped where the index may be
  // undefined, a typeof compared with '') are reported as compile errors, not run
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  // .mocharc.json still gives the polyfill and the timeout; only the specs are ours
  mochaOptions: { spec: scope.specs },
  // only the tests that reach a mutant run for it
  coverageAnalysis: 'perTest',
  // a mutant in code that runs at import (a module-level table such as relay.ts's special
  // networks) is reached by no test in particular: Stryker would run every spec in a fresh
  // process for each, ~97 % of the run's time; they are reported as ignored instead
  ignoreStatic: true,
  // two cores shared with the rest of the team: one test process, plus Stryker itself
  concurrency: 1,
  // dist/ stays in: the runner reports its tests by their built files, and incremental runs
  // diff those files to tell which tests changed (so `npm run mutate` builds first)
  ignorePatterns: ['coverage', 'docs/api', 'kad-discovery-data', 'reports', 'bench/results'],
  reporters: ['html', 'json', 'clear-text', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 85, break: 85 },
  // later runs re-test only the mutants whose code or covering tests changed since the last
  // run; the file is a local cache (gitignored with reports/), so a fresh clone runs in full.
  // Stryker diffs only the mutated files and the spec files: after a change to a test
  // helper or to code outside the scope, run `npm run mutate -- --force`
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  cleanTempDir: true
}
