/** POST /v1/reverse-lookup: the package versions and paths whose manifests hold each content hash. */
import {
  API_ROUTES,
  reverseLookupAnswerSchema,
  reverseLookupRequestSchema,
  type ReverseLookupAnswer,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { doc, jsonSchema, type ApiContext } from '../route-kit.js';

export async function reverseLookupRoutes(app: FastifyInstance, { store }: ApiContext): Promise<void> {
  app.post<{ Body: z.infer<typeof reverseLookupRequestSchema> }>(
    API_ROUTES.reverseLookup,
    {
      schema: { body: jsonSchema(reverseLookupRequestSchema) },
      config: doc('read', 'the package versions and paths that contain each sha256', {
        200: jsonSchema(reverseLookupAnswerSchema),
      }),
    },
    async (request): Promise<ReverseLookupAnswer> => ({
      results: await store.reverseLookup(request.body.sha256),
    }),
  );
}
