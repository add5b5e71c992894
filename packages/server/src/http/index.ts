export { buildApp, type AppOptions } from './app.js';
export { DEFAULT_RATE_LIMIT, type Caller, type RateLimitOptions } from './access.js';
export { DEFAULT_QUEUE_QUOTA, queuePolicyFor, type QueueQuotaOptions } from './routes/lookup.js';
export { DEFAULT_REPORT_BODY_BYTES } from './routes/reports.js';
export { quotaClient } from './client-address.js';
export { ApiError, ERROR_CODES, errorBody, toApiError, type ErrorBody, type ErrorCode } from './errors.js';
export {
  ServerMetrics,
  LATENCY_BUCKETS,
  renderFamilies,
  type Gauge,
  type MetricsSnapshot,
} from './metrics.js';
