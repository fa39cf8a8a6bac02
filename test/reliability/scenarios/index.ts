import { churn } from './churn.js'
import { crash } from './crash.js'
import { eclipse } from './eclipse.js'
import { flood } from './flood.js'
import { fuzz } from './fuzz.js'
import { poisoned } from './poisoned.js'
import { records } from './records.js'
import { slow } from './slow.js'
import type { Figures, Scenario } from '../utils/scenario.js'

/** Every reliability scenario, in the order the runner and docs/RELIABILITY.md list them. */
export const SCENARIOS: Array<Scenario<any, Figures>> = [
  eclipse,
  poisoned,
  records,
  churn,
  crash,
  fuzz,
  flood,
  slow
]
