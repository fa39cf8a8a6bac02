import { crash } from './scenarios/crash.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(crash, 'restarts over the same LevelDB folder after SIGKILL, drops torn records and rejoins from its seeds')
