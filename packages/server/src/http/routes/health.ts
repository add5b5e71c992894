/** Probes and scrapes: /healthz (the process), /readyz (the database), /metrics (Prometheus). */
import { API_ROUTES } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { ApiError, errorBody } from '../errors.js';
import { hostFamilies } from '../host-metrics.js';
import { storeFamilies } from '../metrics.js';
import { runtimeMetricsText } from '../runtime-metrics.js';
import { doc, type ApiContext } from '../route-kit.js';

const HEALTHY = { type: 'object', properties: { status: { const: 'ok' } } } as const;
const READY = {
  type: 'object',
  properties: {
    status: { const: 'ready' },
    schema: { type: 'object', properties: { applied: { type: 'integer' }, known: { type: 'integer' } } },
  },
} as const;

/** `read()`'s answer, read again only when older than `maxAge` ms (a failed read is not kept). */
function cachedFor<T>(maxAge: number, read: () => Promise<T>): () => Promise<T> {
  let cached: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > maxAge) {
      cached = { at: now, value: read() };
      cached.value.catch(() => (cached = undefined));
    }
    return cached.value;
  };
}

export async function healthRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { store, metrics } = ctx;
  app.get(
    API_ROUTES.healthz,
    { config: doc('public', 'the process answers', { 200: HEALTHY }) },
    async () => ({
      status: 'ok',
    }),
  );

  app.get(
    API_ROUTES.readyz,
    { config: doc('public', 'the database answers and its schema is current', { 200: READY }) },
    async (_request, reply) => {
      try {
        return { status: 'ready', schema: await store.schemaVersion() };
      } catch (e) {
        ctx.onInternalError(e, { method: 'GET', url: API_ROUTES.readyz });
        const error = new ApiError('UNAVAILABLE', 'the database does not answer');
        return reply.code(error.statusCode).send(errorBody(error));
      }
    },
  );

  // Database figures are read at most once per statsCacheSeconds, however often /metrics is scraped.
  const maxAge = ctx.statsCacheSeconds * 1000;
  const stats = cachedFor(maxAge, () => store.stats());
  const hosts = cachedFor(maxAge, () => store.hostCountsByVerdict());
  const prometheus = 'text/plain; version=0.0.4';
  app.get(
    API_ROUTES.metrics,
    {
      config: doc(
        'read',
        'Prometheus metrics (text exposition format 0.0.4)',
        { 200: { type: 'string' } },
        prometheus,
      ),
    },
    async (_request, reply) => {
      const families = [...storeFamilies(await stats(), new Date()), ...hostFamilies(await hosts())];
      const text = metrics.render(families) + (await runtimeMetricsText());
      return reply.type(`${prometheus}; charset=utf-8`).send(text);
    },
  );
}
