import { eclipse } from './scenarios/eclipse.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(eclipse, 'holds at most 2 × tableIpLimit attacker entries, hands out no more, dials at most 2 attackers per /24, stays connected to its honest peers, and still finds honest nodes')
