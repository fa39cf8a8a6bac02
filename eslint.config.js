import importPlugin from 'eslint-plugin-import'
import neostandard from 'neostandard'

export default [
  { ignores: ['dist/**', 'cli/dist/**', 'docs/api/**', 'node_modules/**', 'src/**/pb/*.ts', 'bench/results/**'] },
  ...neostandard({ ts: true, env: ['mocha', 'node'] }),
  {
    plugins: { import: importPlugin },
    rules: {
      'import/order': ['error', {
        groups: ['builtin', 'external', 'internal', 'parent', 'sibling', 'index', 'type'],
        alphabetize: { order: 'asc', caseInsensitive: true }
      }],
      'no-console': 'error'
    }
  },
  {
    // the library runs wherever js-libp2p runs (browsers too): no Node-only APIs
    files: ['src/**'],
    ignores: ['src/polyfill.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'the library runs in browsers too: use uint8arrays or @libp2p/interface helpers' }] }],
      'no-restricted-globals': ['error', { name: 'Buffer', message: 'use Uint8Array and uint8arrays' }, { name: 'process', message: 'the library runs in browsers too' }]
    }
  },
  {
    files: ['cli/**', 'bench/**', 'test/**', 'scenarios/**'],
    rules: { 'no-console': 'off' }
  }
]
