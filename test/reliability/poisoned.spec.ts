import { poisoned } from './scenarios/poisoned.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(poisoned, 'never re-addresses an entry, pushes out a live one, or takes in itself or an invalid address')
