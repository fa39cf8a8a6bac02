import { fuzz } from './scenarios/fuzz.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(fuzz, 'survives fuzzed frames with no crash, no unhandled rejection, no table change and its heap back to baseline')
