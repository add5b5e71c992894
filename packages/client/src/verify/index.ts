/** `sysattest verify`: compare, orchestrate, report; and where manifests come from. */
export * from './compare.js';
export * from './report.js';
export * from './source.js';
export * from './verify-machine.js';
