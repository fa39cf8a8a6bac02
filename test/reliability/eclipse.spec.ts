import { eclipse } from './scenarios/eclipse.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(eclipse, 'holds at most 2 × tableIpLimit attacker entries, hands out no more, and still finds honest nodes')
