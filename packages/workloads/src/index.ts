export {
  DedupConfigSchema,
  domainNames,
  formatPath,
  GuestSpecSchema,
  ImageSchema,
  MachineSchema,
  MAX_MACHINE_MIB,
  MAX_SAMPLES,
  parseScenario,
  ScenarioError,
  ScenarioSchema,
  type GuestSpec,
  type Scenario,
  type ScenarioInput,
} from './scenario.js';
export { DEFAULT_SCENARIO } from './default-scenario.js';
export { fillImagePage, fillPrivatePage, imageSeed, PAGE_WORDS } from './page-content.js';
export {
  DEFAULT_SYNTHETIC_GUEST_OPTIONS,
  PageKind,
  SyntheticGuest,
  type GuestFailure,
  type GuestHypercalls,
  type GuestPorts,
  type GuestState,
  type SyntheticGuestOptions,
  type SyntheticGuestSpec,
} from './synthetic-guest.js';
