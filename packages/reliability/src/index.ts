export { CRASH_MAX_KEEP, type CrashConfig, crashHookOptions, crashMetrics } from './crash-plan.js';
export { type Cloud, type FaultKind, FaultProxy, type FaultProxyOptions, type FaultStats, seededRandom } from './fault-proxy.js';
export { busyStep, PAUSED_HOOK, type PausedConfig, pausedMetrics } from './paused-child.js';
export { PREEMPT_INTERVAL, type PreemptConfig } from './preempt-plan.js';
export { recordFigures } from './report.js';
