/** `sysattest verify --report`: the host's reports to the server, through a spool. */
export * from './host-reporting.js';
export * from './report-delivery.js';
export * from './report-spool.js';
export * from './reporter-token.js';
