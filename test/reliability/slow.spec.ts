import { slow } from './scenarios/slow.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(slow, 'times out requests to slow peers, closes their streams and keeps every resource bounded')
