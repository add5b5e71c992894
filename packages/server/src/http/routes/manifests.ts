/** Manifests: a generator uploads them signed; anyone who may read fetches one by digest. */
import {
  API_ROUTES,
  PROTOCOL_LIMITS,
  digestParams,
  manifestDocumentSchema,
  manifestUploadSchema,
  manifestUploadedSchema,
  verifyManifest,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.js';
import { decodeBase64, doc, jsonSchema, type ApiContext } from '../route-kit.js';

export async function manifestRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { store } = ctx;
  const uploaded = jsonSchema(manifestUploadedSchema);

  app.post<{ Body: z.infer<typeof manifestUploadSchema> }>(
    API_ROUTES.manifests,
    {
      bodyLimit: ctx.bodyLimit(PROTOCOL_LIMITS.manifestUploadLength),
      schema: { body: jsonSchema(manifestUploadSchema) },
      config: doc('generator', 'upload a signed manifest', { 201: uploaded, 200: uploaded }),
    },
    async (request, reply) => {
      const bytes = decodeBase64(request.body.manifest, 'manifest');
      const verified = await verifyManifest(bytes, request.body.signature, await ctx.keyring());
      const outcome = await store.ingestManifest(verified);
      const m = verified.content;
      return reply.code(outcome === 'stored' ? 201 : 200).send({
        outcome,
        platform: m.platform,
        name: m.package.name,
        version: m.package.version,
        arch: m.package.architecture,
        signerFingerprint: verified.signerFingerprint,
      });
    },
  );

  app.get<{ Params: z.infer<ReturnType<typeof digestParams>> }>(
    API_ROUTES.manifest,
    {
      schema: { params: jsonSchema(digestParams()) },
      config: doc('read', 'one stored manifest by the sha256 of its signed bytes', {
        200: jsonSchema(manifestDocumentSchema),
      }),
    },
    async (request) => {
      const m = await store.getManifest({ digest: request.params.digest });
      if (m === undefined) throw new ApiError('NOT_FOUND', `no manifest ${request.params.digest}`);
      return {
        digest: m.digest,
        platform: m.platform,
        name: m.name,
        version: m.version,
        arch: m.arch,
        manifest: Buffer.from(m.bytes).toString('base64'),
        signature: m.signature,
      };
    },
  );
}
