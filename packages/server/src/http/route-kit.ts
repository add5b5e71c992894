/**
 * What the route modules share: who may call a route (`access` in the route's config), request
 * schema fragments, and the response schemas the OpenAPI document describes.
 */
import { JOB_LIMITS, JOB_STATES, LOOKUP_LIMITS, TOKEN_ROLES, type TokenRole } from '../store/index.js';
import { ApiError } from './errors.js';

/**
 * Who may call a route: `public` (anyone), `read` (anyone, or reader tokens and above when reads
 * need a token), or a token role and above (admin ⊇ generator ⊇ reader).
 */
export type Access = 'public' | 'read' | TokenRole;

/** The config every sysattest route carries (fastify `config`): access, and documentation. */
export interface RouteDoc {
  access: Access;
  /** One line for the OpenAPI document. */
  summary: string;
  /** Response JSON schemas by status, for the OpenAPI document only (answers are not filtered by them). */
  responses: Record<number, unknown>;
  /** Non-JSON answers (e.g. text/plain for /metrics). */
  produces?: string;
}

export const RANK: Record<TokenRole, number> = { reader: 1, generator: 2, admin: 3 };

export const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes strict base64 (padding required, no whitespace) or refuses with BAD_REQUEST. */
export function decodeBase64(text: string, field: string): Buffer {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new ApiError('BAD_REQUEST', `body/${field} must be base64 (RFC 4648, padded, no whitespace)`);
  }
  return Buffer.from(text, 'base64');
}

export const FIELD = { type: 'string', minLength: 1, maxLength: LOOKUP_LIMITS.maxFieldLength } as const;
export const PLATFORM = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const WORKER_ID = {
  type: 'string',
  minLength: 1,
  maxLength: JOB_LIMITS.maxWorkerIdLength,
} as const;
export const ID_PATTERN = '^[1-9][0-9]{0,14}$';
export const ID_PARAMS = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: ID_PATTERN } },
} as const;
/** The querystring of a route that takes none: any parameter is refused. */
export const NO_QUERY = { type: 'object', additionalProperties: false, properties: {} } as const;
export const FINGERPRINT = { type: 'string', pattern: '^[0-9A-Fa-f]{40}$' } as const;
export const LIMIT_QUERY = { type: 'string', pattern: '^[1-9][0-9]{0,4}$' } as const;

// --- response schemas (documentation) ---------------------------------------------------------

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const time = { type: 'string', format: 'date-time' } as const;
const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code: str, message: str } },
  },
} as const;

export const JOB_SCHEMA = {
  type: 'object',
  required: [
    'id',
    'platform',
    'targetPlatform',
    'name',
    'version',
    'arch',
    'reason',
    'state',
    'attempts',
    'nextRunAt',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: int,
    platform: str,
    targetPlatform: str,
    name: str,
    version: str,
    arch: str,
    reason: { type: 'string', enum: ['client-request', 'tracked', 'operator'] },
    state: { type: 'string', enum: [...JOB_STATES] },
    attempts: int,
    nextRunAt: time,
    leaseOwner: str,
    leaseExpiresAt: time,
    lastError: str,
    manifestId: int,
    createdAt: time,
    updatedAt: time,
    completedAt: time,
  },
} as const;

export const ONE_JOB = { type: 'object', required: ['job'], properties: { job: JOB_SCHEMA } } as const;
export const JOB_LIST = {
  type: 'object',
  required: ['jobs'],
  properties: { jobs: { type: 'array', items: JOB_SCHEMA } },
} as const;

export const CATALOG_INFO_SCHEMA = {
  type: 'object',
  required: ['id', 'platform', 'digest', 'generatedAt', 'signerFingerprint', 'packageCount', 'ingestedAt'],
  properties: {
    id: int,
    platform: str,
    digest: hex64,
    generatedAt: time,
    signerFingerprint: str,
    packageCount: int,
    ingestedAt: time,
  },
} as const;

export const TOKEN_INFO_SCHEMA = {
  type: 'object',
  required: ['id', 'name', 'role', 'createdAt'],
  properties: {
    id: int,
    name: str,
    role: { type: 'string', enum: [...TOKEN_ROLES] },
    createdAt: time,
    revokedAt: time,
  },
} as const;

export const TRUSTED_KEY_SCHEMA = {
  type: 'object',
  required: ['fingerprint', 'armored', 'addedAt'],
  properties: {
    fingerprint: { type: 'string', pattern: '^[0-9A-F]{40}$' },
    armored: str,
    addedAt: time,
    removedAt: time,
  },
} as const;

export const OBJECT = { type: 'object' } as const;
