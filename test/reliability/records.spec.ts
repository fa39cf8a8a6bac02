import { records } from './scenarios/records.js'
import { scenarioSpec } from './utils/spec.js'

scenarioSpec(records, 'finds a moved node through its newer record within one refresh, and refuses forged, wrong-key and replayed records')
