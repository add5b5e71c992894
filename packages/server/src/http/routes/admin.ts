/**
 * The operator's routes (admin tokens only): tokens, trusted generator keys, tracked packages,
 * manifest conflicts, job requeue. Each write is one store call, so one transaction.
 */
import { API_ROUTES, hostNameField } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { TOKEN_ROLES, type Store, type TokenRole, type TrackingSource } from '../../store/index.js';
import { ApiError } from '../errors.js';
import {
  doc,
  FINGERPRINT,
  ID_PARAMS,
  jsonSchema,
  LIMIT_QUERY,
  NO_QUERY,
  ONE_JOB,
  PLATFORM,
  TOKEN_INFO_SCHEMA,
  TRUSTED_KEY_SCHEMA,
  type ApiContext,
} from '../route-kit.js';

/** Longest armored key accepted (a key with many signatures and subkeys is a few hundred KiB at most). */
export const MAX_ARMORED_KEY = 1024 * 1024;
const MAX_TRACK_NAMES = 10_000;
const TRACKING_SOURCES = ['config', 'client-request'] as const;

const PACKAGE_NAME = { type: 'string', minLength: 1, maxLength: 256 } as const;
const TRACK_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['platform', 'names'],
  properties: {
    platform: PLATFORM,
    names: { type: 'array', minItems: 1, maxItems: MAX_TRACK_NAMES, items: PACKAGE_NAME },
    source: { type: 'string', enum: [...TRACKING_SOURCES] },
  },
} as const;

const TRACKED_SCHEMA = {
  type: 'object',
  required: ['platform', 'name', 'source', 'since'],
  properties: {
    platform: { type: 'string' },
    name: { type: 'string' },
    source: { type: 'string', enum: [...TRACKING_SOURCES] },
    since: { type: 'string', format: 'date-time' },
  },
} as const;

const CONFLICT_SCHEMA = {
  type: 'object',
  required: [
    'id',
    'platform',
    'name',
    'version',
    'arch',
    'digest',
    'storedDigest',
    'signerFingerprint',
    'firstReceivedAt',
    'lastReceivedAt',
    'attempts',
  ],
  properties: {
    id: { type: 'integer' },
    platform: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    arch: { type: 'string' },
    digest: { type: 'string', description: 'sha256 of the refused bytes' },
    storedDigest: { type: 'string', description: 'sha256 of the manifest that is stored (and stays)' },
    signerFingerprint: { type: 'string' },
    firstReceivedAt: { type: 'string', format: 'date-time' },
    lastReceivedAt: { type: 'string', format: 'date-time' },
    attempts: { type: 'integer' },
  },
} as const;

/** Admin routes: tokens. */
function tokenRoutes(app: FastifyInstance, store: Store): void {
  app.post<{ Body: { role: TokenRole; name: string; host?: string } }>(
    API_ROUTES.adminTokens,
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['role', 'name'],
          properties: {
            role: { type: 'string', enum: [...TOKEN_ROLES] },
            name: { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' },
            host: {
              ...jsonSchema(hostNameField()),
              description:
                'reporter tokens (required for them, refused for other roles): the host it reports for',
            },
          },
        },
      },
      config: doc('admin', 'create a token; its secret is in this answer only (stored hashed)', {
        201: {
          type: 'object',
          required: ['token', 'secret'],
          properties: { token: TOKEN_INFO_SCHEMA, secret: { type: 'string', pattern: '^sat_' } },
        },
      }),
    },
    async (request, reply) => {
      const { role, name, host } = request.body;
      const created = await store.createToken(role, name, host);
      const info = (await store.listTokens()).find((t) => t.id === created.id);
      return reply.code(201).send({ token: info, secret: created.secret });
    },
  );

  app.get(
    API_ROUTES.adminTokens,
    {
      schema: { querystring: NO_QUERY },
      config: doc('admin', 'list tokens (never their secrets), revoked ones included', {
        200: {
          type: 'object',
          required: ['tokens'],
          properties: { tokens: { type: 'array', items: TOKEN_INFO_SCHEMA } },
        },
      }),
    },
    async () => ({ tokens: await store.listTokens() }),
  );

  app.post<{ Params: { id: string } }>(
    API_ROUTES.adminRevokeToken,
    {
      schema: { params: ID_PARAMS },
      config: doc('admin', 'revoke a token (it stays listed, marked revoked); revoking twice is a no-op', {
        200: { type: 'object', required: ['token'], properties: { token: TOKEN_INFO_SCHEMA } },
      }),
    },
    async (request) => ({ token: await store.revokeToken(Number(request.params.id)) }),
  );
}

const KEY_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['armored'],
  properties: { armored: { type: 'string', minLength: 1, maxLength: MAX_ARMORED_KEY } },
} as const;
const KEYS_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: { all: { type: 'string', enum: ['true', 'false'] } },
} as const;
const FINGERPRINT_PARAMS = {
  type: 'object',
  additionalProperties: false,
  required: ['fingerprint'],
  properties: { fingerprint: FINGERPRINT },
} as const;

/** Admin routes: trusted generator keys. */
function trustedKeyRoutes(app: FastifyInstance, store: Store): void {
  app.post<{ Body: { armored: string } }>(
    API_ROUTES.adminKeys,
    {
      bodyLimit: MAX_ARMORED_KEY * 2,
      schema: { body: KEY_BODY },
      config: doc('admin', 'trust a generator public key (armored OpenPGP, exactly one key)', {
        201: { type: 'object', required: ['key'], properties: { key: TRUSTED_KEY_SCHEMA } },
      }),
    },
    async (request, reply) => reply.code(201).send({ key: await store.addTrustedKey(request.body.armored) }),
  );

  app.get<{ Querystring: { all?: string } }>(
    API_ROUTES.adminKeys,
    {
      schema: { querystring: KEYS_QUERY },
      config: doc('admin', 'the trusted generator keys (all=true: removed ones too)', {
        200: {
          type: 'object',
          required: ['keys'],
          properties: { keys: { type: 'array', items: TRUSTED_KEY_SCHEMA } },
        },
      }),
    },
    async (request) => ({
      keys: await store.listTrustedKeys({ includeRemoved: request.query.all === 'true' }),
    }),
  );

  app.delete<{ Params: { fingerprint: string } }>(
    API_ROUTES.adminKey,
    {
      schema: { params: FINGERPRINT_PARAMS },
      config: doc('admin', 'stop trusting a generator key (its stored manifests stay)', {
        200: {
          type: 'object',
          required: ['removed'],
          properties: { removed: { type: 'string', pattern: '^[0-9A-F]{40}$' } },
        },
      }),
    },
    async (request) => {
      const fingerprint = request.params.fingerprint.toUpperCase();
      await store.removeTrustedKey(fingerprint);
      return { removed: fingerprint };
    },
  );
}

/** Admin routes: tracked packages. */
function trackedRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: { platform?: string } }>(
    API_ROUTES.adminTracked,
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { platform: PLATFORM } },
      },
      config: doc('admin', 'tracked packages (the server keeps a manifest of their newest version)', {
        200: {
          type: 'object',
          required: ['packages'],
          properties: { packages: { type: 'array', items: TRACKED_SCHEMA } },
        },
      }),
    },
    async (request) => ({ packages: await store.listTrackedPackages(request.query.platform) }),
  );

  app.post<{ Body: { platform: string; names: string[]; source?: TrackingSource } }>(
    API_ROUTES.adminTracked,
    {
      schema: { body: TRACK_BODY },
      config: doc('admin', 'track packages on a platform; queues their newest versions without a manifest', {
        200: {
          type: 'object',
          required: ['tracked', 'jobsQueued'],
          properties: { tracked: { type: 'integer' }, jobsQueued: { type: 'integer' } },
        },
      }),
    },
    async (request) => {
      const { platform, names, source } = request.body;
      const { jobsQueued } = await store.trackPackages(platform, names, source ?? 'config');
      return { tracked: new Set(names).size, jobsQueued };
    },
  );

  app.post<{ Body: { platform: string; names: string[]; source?: TrackingSource } }>(
    API_ROUTES.adminUntrack,
    {
      schema: { body: TRACK_BODY },
      config: doc('admin', 'stop tracking packages (source default: config)', {
        200: { type: 'object', required: ['removed'], properties: { removed: { type: 'integer' } } },
      }),
    },
    async (request) => {
      const { platform, names, source } = request.body;
      return { removed: await store.untrackPackages(platform, names, source ?? 'config') };
    },
  );
}

/** Admin routes: conflicts. */
function conflictRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: { limit?: string } }>(
    API_ROUTES.adminConflicts,
    {
      schema: {
        querystring: { type: 'object', additionalProperties: false, properties: { limit: LIMIT_QUERY } },
      },
      config: doc('admin', 'uploads refused because other bytes are stored for the version, newest first', {
        200: {
          type: 'object',
          required: ['conflicts'],
          properties: { conflicts: { type: 'array', items: CONFLICT_SCHEMA } },
        },
      }),
    },
    async (request) => {
      const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
      if (limit > 10_000) throw new ApiError('BAD_REQUEST', 'querystring/limit must be at most 10000');
      return { conflicts: await store.listConflicts({ limit }) };
    },
  );

  app.get<{ Params: { id: string } }>(
    API_ROUTES.adminConflictDocument,
    {
      schema: { params: ID_PARAMS },
      config: doc('admin', 'the refused bytes (base64) and signature of a conflict, to examine', {
        200: {
          type: 'object',
          required: ['id', 'manifest', 'signature'],
          properties: {
            id: { type: 'integer' },
            manifest: { type: 'string', contentEncoding: 'base64' },
            signature: { type: 'string' },
          },
        },
      }),
    },
    async (request) => {
      const id = Number(request.params.id);
      const document = await store.getConflictDocument(id);
      if (document === undefined) throw new ApiError('NOT_FOUND', `no conflict ${id}`);
      return { id, manifest: Buffer.from(document.bytes).toString('base64'), signature: document.signature };
    },
  );
}

/** Admin routes: jobs. */
function requeueRoute(app: FastifyInstance, store: Store): void {
  app.post<{ Params: { id: string } }>(
    API_ROUTES.requeueJob,
    {
      schema: { params: ID_PARAMS },
      config: doc('admin', 'put a job (a dead one, typically) back in the queue now, attempts reset', {
        200: ONE_JOB,
      }),
    },
    async (request) => ({ job: await store.requeue(Number(request.params.id)) }),
  );
}

/** The operator's routes (admin tokens only). */
export async function adminRoutes(app: FastifyInstance, { store }: ApiContext): Promise<void> {
  tokenRoutes(app, store);
  trustedKeyRoutes(app, store);
  trackedRoutes(app, store);
  conflictRoutes(app, store);
  requeueRoute(app, store);
}
