export { buildApp, type AppOptions } from './app.js';
export { ApiError, ERROR_CODES, errorBody, toApiError, type ErrorBody, type ErrorCode } from './errors.js';
