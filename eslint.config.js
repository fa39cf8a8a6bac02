import importPlugin from 'eslint-plugin-import'
import neostandard from 'neostandard'

export default [
  { ignores: ['dist/**', 'docs/api/**', 'node_modules/**', 'src/**/pb/*.ts', 'bench/results/**'] },
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
    files: ['src/cli/**', 'bench/**', 'test/**', 'scenarios/**'],
    rules: { 'no-console': 'off' }
  }
]
