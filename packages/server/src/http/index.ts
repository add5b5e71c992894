export {
  buildApp,
  DEFAULT_QUEUE_QUOTA,
  DEFAULT_RATE_LIMIT,
  queuePolicyFor,
  type AppOptions,
  type Caller,
  type QueueQuotaOptions,
  type RateLimitOptions,
} from './app.js';
export { quotaClient } from './client-address.js';
export { ApiError, ERROR_CODES, errorBody, toApiError, type ErrorBody, type ErrorCode } from './errors.js';
export {
  ServerMetrics,
  LATENCY_BUCKETS,
  renderFamilies,
  type Gauge,
  type MetricsSnapshot,
} from './metrics.js';
