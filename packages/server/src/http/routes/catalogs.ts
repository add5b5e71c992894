/**
 * Catalog snapshots: a generator uploads them signed; a client fetches the one a lookup named and
 * verifies `outdated` against it, never the server's word.
 */
import {
  API_ROUTES,
  PROTOCOL_LIMITS,
  catalogDocumentSchema,
  catalogUploadSchema,
  catalogUploadedSchema,
  digestParams,
  verifyCatalog,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.js';
import { decodeBase64, doc, jsonSchema, type ApiContext } from '../route-kit.js';

export async function catalogRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { store } = ctx;
  const uploaded = jsonSchema(catalogUploadedSchema);

  app.get<{ Params: z.infer<ReturnType<typeof digestParams>> }>(
    API_ROUTES.catalog,
    {
      schema: { params: jsonSchema(digestParams()) },
      config: doc('read', 'one stored catalog snapshot by the sha256 of its signed bytes', {
        200: jsonSchema(catalogDocumentSchema),
      }),
    },
    async (request) => {
      const c = await store.getCatalogSnapshot({ digest: request.params.digest });
      if (c === undefined) throw new ApiError('NOT_FOUND', `no catalog snapshot ${request.params.digest}`);
      return {
        digest: c.digest,
        platform: c.platform,
        generatedAt: c.generatedAt,
        catalog: Buffer.from(c.bytes).toString('base64'),
        signature: c.signature,
      };
    },
  );

  app.post<{ Body: z.infer<typeof catalogUploadSchema> }>(
    API_ROUTES.catalogs,
    {
      bodyLimit: ctx.bodyLimit(PROTOCOL_LIMITS.catalogUploadLength),
      schema: { body: jsonSchema(catalogUploadSchema) },
      config: doc('generator', 'upload a signed catalog snapshot', { 201: uploaded, 200: uploaded }),
    },
    async (request, reply) => {
      const bytes = decodeBase64(request.body.catalog, 'catalog');
      const verified = await verifyCatalog(bytes, request.body.signature, await ctx.keyring());
      const result = await store.ingestCatalog(verified);
      return reply.code(result.duplicate ? 200 : 201).send(result);
    },
  );
}
