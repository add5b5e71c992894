/** GET /v1/keys: the generator public keys this server trusts (a client pins one only by fingerprint). */
import { API_ROUTES, publicKeysAnswerSchema } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { doc, jsonSchema, NO_QUERY, type ApiContext } from '../route-kit.js';

export async function keyRoutes(app: FastifyInstance, { store }: ApiContext): Promise<void> {
  app.get(
    API_ROUTES.keys,
    {
      schema: { querystring: NO_QUERY },
      config: doc('read', 'the generator public keys this server trusts', {
        200: jsonSchema(publicKeysAnswerSchema),
      }),
    },
    async () => ({
      keys: (await store.listTrustedKeys()).map((k) => ({ fingerprint: k.fingerprint, armored: k.armored })),
    }),
  );
}
