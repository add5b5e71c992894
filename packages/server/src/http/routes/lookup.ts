/**
 * POST /v1/lookup: a whole machine's packages in one request (manifests, pending jobs, newest
 * versions), answered item by item (lookup-answer.ts); what it may queue depends on the caller.
 */
import { API_ROUTES, lookupAnswerSchema, lookupRequestSchema } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { LookupResult, QueuePolicy } from '../../store/index.js';
import type { Caller } from '../access.js';
import { quotaClient } from '../client-address.js';
import { lookupAnswerStream } from '../lookup-answer.js';
import { doc, jsonSchema, type ApiContext } from '../route-kit.js';

/** What anonymous lookups of one client address (IPv6: one /64) may queue per window. */
export interface QueueQuotaOptions {
  /** New generation jobs, and separately newly tracked packages, per window. */
  max: number;
  windowSeconds: number;
}

/**
 * Enough for one new machine's first lookup on a fresh server (a Debian server has ~800
 * packages, a desktop 2,000–3,000), so an anonymous client is deferred only when it asks for far
 * more than one machine could.
 */
export const DEFAULT_QUEUE_QUOTA: QueueQuotaOptions = { max: 5000, windowSeconds: 3600 };

/** How much a lookup may queue: a token holder anything; an anonymous client within its quota, or nothing. */
export function queuePolicyFor(
  caller: Caller | undefined,
  address: string,
  rules: { queueNeedsToken: boolean; quota: QueueQuotaOptions | false },
): QueuePolicy {
  if (caller?.token !== undefined) return { kind: 'open' };
  if (rules.queueNeedsToken) return { kind: 'closed' };
  if (rules.quota === false) return { kind: 'open' };
  return { kind: 'quota', client: quotaClient(address), ...rules.quota };
}

/** Metrics for what a lookup deferred or omitted; a notice when a client used up its quota. */
function recordLookup(ctx: ApiContext, result: LookupResult, queue: QueuePolicy): void {
  if (result.documentsOmitted !== undefined) ctx.metrics.documentsOmitted(result.documentsOmitted);
  const d = result.deferred;
  if (d !== undefined) ctx.metrics.lookupDeferred(d.reason, d.jobs, d.tracked);
  if (result.quotaReached === true && queue.kind === 'quota') {
    ctx.onNotice(
      `anonymous client ${queue.client} reached its queue quota (${queue.max} new jobs and ${queue.max} ` +
        `newly tracked packages per ${queue.windowSeconds} s): its lookups queue nothing more this window`,
    );
  }
}

export async function lookupRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  app.post<{ Body: z.infer<typeof lookupRequestSchema> }>(
    API_ROUTES.lookup,
    {
      schema: { body: jsonSchema(lookupRequestSchema) },
      config: doc('read', "a whole machine's packages: manifests, pending jobs, newest versions", {
        200: jsonSchema(lookupAnswerSchema),
      }),
    },
    async (request, reply) => {
      const queue = ctx.queuePolicy(request.sysattestCaller, request.ip);
      const result = await ctx.store.lookup(request.body.platform, request.body.items, {
        includeDocuments: request.body.documents ?? true,
        queue,
        ...(ctx.lookupDocumentBudget === undefined ? {} : { documentBudget: ctx.lookupDocumentBudget }),
      });
      recordLookup(ctx, result, queue);
      return reply.type('application/json; charset=utf-8').send(lookupAnswerStream(result));
    },
  );
}
