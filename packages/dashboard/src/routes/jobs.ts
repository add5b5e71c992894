/** The generation queue: its lists by view, and a job's page (readable). Requeue is an admin action (admin.ts). */
import type { FastifyInstance } from 'fastify';
import { readable } from '../access.js';
import { DashboardError, JOB_VIEWS, type JobView } from '../backend.js';
import type { DashboardContext } from '../context.js';
import { choice, pageOf, PAGE_SIZE, recordId, type Query } from '../input.js';
import { jobPage, jobsPage } from '../pages.js';
import { sendPage } from '../replies.js';

export async function jobRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = readable(ctx);

  app.get<{ Querystring: Query }>('/jobs', { preHandler }, async (request, reply) => {
    const v: JobView = choice(request.query, 'view', 20, JOB_VIEWS) ?? 'queue';
    const page = await backend.jobs(v, pageOf(request.query, PAGE_SIZE));
    return sendPage(reply, jobsPage(ctx.state(request).view, v, page, await backend.queueCounts()));
  });

  app.get<{ Params: { id: string } }>('/jobs/:id', { preHandler }, async (request, reply) => {
    const job = await backend.job(recordId(request.params.id, 'job'));
    if (job === undefined) throw new DashboardError(404, `no job ${request.params.id}`);
    return sendPage(reply, jobPage(ctx.state(request).view, job));
  });
}
