// The auto-dialer's end-to-end spec alone. `npm test` runs it beside the other specs: it
// spends about two minutes waiting out wall-clock windows on a handful of idle nodes, at
// a few percent of one core, and the other specs take about four minutes in line.
const config = require('./.mocharc.json')

module.exports = { ...config, spec: ['dist/test/e2e/dialer.spec.js'] }
