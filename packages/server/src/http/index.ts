export { buildApp, DEFAULT_RATE_LIMIT, type AppOptions, type Caller, type RateLimitOptions } from './app.js';
export { ApiError, ERROR_CODES, errorBody, toApiError, type ErrorBody, type ErrorCode } from './errors.js';
export {
  ServerMetrics,
  LATENCY_BUCKETS,
  renderFamilies,
  type Gauge,
  type MetricsSnapshot,
} from './metrics.js';
