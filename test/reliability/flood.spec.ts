import { flood } from './scenarios/flood.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(flood, 'holds its rate limits, bounds its heap and still answers honest peers within the timeout')
