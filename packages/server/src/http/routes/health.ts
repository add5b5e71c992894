/** Probes and scrapes: /healthz (the process), /readyz (the database), /metrics (Prometheus). */
import { API_ROUTES } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { StoreStats } from '../../store/index.js';
import { ApiError, errorBody } from '../errors.js';
import { storeFamilies } from '../metrics.js';
import { doc, type ApiContext } from '../route-kit.js';

const HEALTHY = { type: 'object', properties: { status: { const: 'ok' } } } as const;
const READY = {
  type: 'object',
  properties: {
    status: { const: 'ready' },
    schema: { type: 'object', properties: { applied: { type: 'integer' }, known: { type: 'integer' } } },
  },
} as const;

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
  let cached: { at: number; stats: Promise<StoreStats> } | undefined;
  const maxAge = ctx.statsCacheSeconds * 1000;
  const stats = (): Promise<StoreStats> => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > maxAge) {
      cached = { at: now, stats: store.stats() };
      cached.stats.catch(() => (cached = undefined));
    }
    return cached.stats;
  };
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
      const families = storeFamilies(await stats(), new Date());
      return reply.type(`${prometheus}; charset=utf-8`).send(metrics.render(families));
    },
  );
}
