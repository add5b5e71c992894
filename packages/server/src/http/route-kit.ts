/**
 * What the route modules share: who may call a route (`access` in the route's config), the route
 * config that documents it, and the JSON Schemas of the protocol (core `protocol/`) as fastify
 * validates them and the OpenAPI document shows them.
 */
import {
  apiErrorBodySchema,
  idParams,
  jobAnswerSchema,
  noQuery,
  platformField,
  protocolJsonSchema,
  type TrustedKeyring,
} from '@sysattest/core';
import { TOKEN_ROLES, type QueuePolicy, type Store, type TokenRole } from '../store/index.js';
import { ApiError } from './errors.js';
import type { Caller } from './access.js';
import type { ServerMetrics } from './metrics.js';

/**
 * Who may call a route: `public` (anyone), `read` (anyone, or reader tokens and above when reads
 * need a token), a token role and above (admin ⊇ generator ⊇ reader), or `reporter`: reporter
 * tokens only, the one kind bound to a host.
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

/** `config` of a route: who may call it, and what the OpenAPI document says about it. */
export function doc(
  access: Access,
  summary: string,
  responses: Record<number, unknown>,
  produces?: string,
): { sysattest: RouteDoc } {
  return { sysattest: { access, summary, responses, ...(produces === undefined ? {} : { produces }) } };
}

/** What the route modules are given (AppOptions with its defaults applied): see app.ts. */
export interface ApiContext {
  store: Store;
  /** The keys uploads must be signed by. */
  keyring: () => Promise<TrustedKeyring>;
  /** A route's body cap: `AppOptions.bodyLimit` when given, else the route's own default. */
  bodyLimit: (routeDefault: number) => number;
  /** POST /v1/reports' own body cap (AppOptions.reportBodyLimit). */
  reportBodyBytes: number;
  metrics: ServerMetrics;
  /** What a lookup by this caller from this address may queue. */
  queuePolicy: (caller: Caller | undefined, address: string) => QueuePolicy;
  lookupDocumentBudget: number | undefined;
  statsCacheSeconds: number;
  onInternalError: (error: unknown, request: { method: string; url: string }) => void;
  onNotice: (message: string) => void;
}

/**
 * Roles in order of what they may read and write. A reporter token stands outside the order
 * (rank 0): it may only send its host's reports (see access.ts).
 */
export const RANK: Record<TokenRole, number> = { reporter: 0, reader: 1, generator: 2, admin: 3 };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes strict base64 (padding required, no whitespace) or refuses with BAD_REQUEST. */
export function decodeBase64(text: string, field: string): Buffer {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new ApiError('BAD_REQUEST', `body/${field} must be base64 (RFC 4648, padded, no whitespace)`);
  }
  return Buffer.from(text, 'base64');
}

/** The protocol's schemas as JSON Schema (the one conversion: see core `protocolJsonSchema`). */
export const jsonSchema = protocolJsonSchema;

export const PLATFORM = jsonSchema(platformField());
export const ID_PARAMS = jsonSchema(idParams());
/** The querystring of a route that takes none: any parameter is refused. */
export const NO_QUERY = jsonSchema(noQuery());
export const FINGERPRINT = { type: 'string', pattern: '^[0-9A-Fa-f]{40}$' } as const;
export const LIMIT_QUERY = { type: 'string', pattern: '^[1-9][0-9]{0,4}$' } as const;

// --- response schemas (documentation) ---------------------------------------------------------

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const time = { type: 'string', format: 'date-time' } as const;

export const ERROR_SCHEMA = jsonSchema(apiErrorBodySchema);
export const ONE_JOB = jsonSchema(jobAnswerSchema);

export const TOKEN_INFO_SCHEMA = {
  type: 'object',
  required: ['id', 'name', 'role', 'createdAt'],
  properties: {
    id: int,
    name: str,
    role: { type: 'string', enum: [...TOKEN_ROLES] },
    host: { type: 'string', description: 'reporter tokens: the host whose reports the token sends' },
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
