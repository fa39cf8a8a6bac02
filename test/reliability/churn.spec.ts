import { churn } from './scenarios/churn.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(churn, 'keeps lookups accurate on the live set, drops the dead within bounded checks, and keeps every table in bounds')
