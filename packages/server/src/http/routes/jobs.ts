/**
 * The generation queue as workers see it (claim, heartbeat, complete, fail: a generator token)
 * and as the operator lists it (admin). Requeue is an admin route (admin.ts).
 */
import {
  API_ROUTES,
  claimAnswerSchema,
  claimRequestSchema,
  failRequestSchema,
  idParams,
  jobAnswerSchema,
  jobListAnswerSchema,
  jobListQuerySchema,
  workerRequestSchema,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { doc, ID_PARAMS, jsonSchema, type ApiContext } from '../route-kit.js';

type JobParams = z.infer<ReturnType<typeof idParams>>;

async function listRoute(app: FastifyInstance, { store }: ApiContext): Promise<void> {
  app.get<{ Querystring: z.infer<typeof jobListQuerySchema> }>(
    API_ROUTES.jobs,
    {
      schema: { querystring: jsonSchema(jobListQuerySchema) },
      config: doc('admin', 'list generation jobs (id order, paginated by afterId)', {
        200: jsonSchema(jobListAnswerSchema),
      }),
    },
    async (request) => {
      const q = request.query;
      const jobs = await store.listJobs({
        ...(q.platform === undefined ? {} : { platform: q.platform }),
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.afterId === undefined ? {} : { afterId: Number(q.afterId) }),
        ...(q.limit === undefined ? {} : { limit: Number(q.limit) }),
      });
      return { jobs };
    },
  );
}

export async function jobRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const { store } = ctx;
  const oneJob = { 200: jsonSchema(jobAnswerSchema) };
  const workerBody = jsonSchema(workerRequestSchema);
  await listRoute(app, ctx);

  app.post<{ Body: z.infer<typeof claimRequestSchema> }>(
    API_ROUTES.claimJobs,
    {
      schema: { body: jsonSchema(claimRequestSchema) },
      config: doc('generator', 'lease up to max due jobs of these platforms', {
        200: jsonSchema(claimAnswerSchema),
      }),
    },
    async (request) => {
      const b = request.body;
      return { jobs: await store.claimJobs(b.workerId, b.platforms, b.max ?? 1, b.leaseSeconds ?? 600) };
    },
  );

  app.post<{ Params: JobParams; Body: z.infer<typeof workerRequestSchema> }>(
    API_ROUTES.heartbeatJob,
    {
      schema: { params: ID_PARAMS, body: workerBody },
      config: doc('generator', "renew a running job's lease", oneJob),
    },
    async (request) => ({ job: await store.heartbeat(Number(request.params.id), request.body.workerId) }),
  );

  app.post<{ Params: JobParams; Body: z.infer<typeof workerRequestSchema> }>(
    API_ROUTES.completeJob,
    {
      schema: { params: ID_PARAMS, body: workerBody },
      config: doc('generator', 'confirm a job whose manifest was uploaded', oneJob),
    },
    async (request) => ({ job: await store.completeJob(Number(request.params.id), request.body.workerId) }),
  );

  app.post<{ Params: JobParams; Body: z.infer<typeof failRequestSchema> }>(
    API_ROUTES.failJob,
    {
      schema: { params: ID_PARAMS, body: jsonSchema(failRequestSchema) },
      config: doc('generator', 'report a failed job (retried after a backoff, then dead)', oneJob),
    },
    async (request) => ({
      job: await store.failJob(Number(request.params.id), request.body.workerId, request.body.error),
    }),
  );
}
