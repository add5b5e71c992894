/** The service's health: queue, workers, catalogs and HTTP figures (a readable page). */
import type { FastifyInstance } from 'fastify';
import { readable } from '../access.js';
import type { DashboardContext } from '../context.js';
import { healthPage } from '../pages.js';
import { sendPage } from '../replies.js';

export async function healthRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  app.get('/health', { preHandler: readable(ctx) }, async (request, reply) =>
    sendPage(reply, healthPage(ctx.state(request).view, await ctx.backend.health())),
  );
}
