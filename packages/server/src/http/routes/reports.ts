/**
 * POST /v1/reports: a host sends its verify report with its reporter token. The token says which
 * host it is (the body's `hostname` is informational only), so one host never writes another's
 * history; the report is what the host SAYS about itself, stored as its claim. Bounded (body cap,
 * the protocol's schema), refused whole when malformed or inconsistent, stored once per reportId.
 */
import {
  API_ROUTES,
  reportInconsistency,
  reportReceiptSchema,
  reportUploadSchema,
  verifyReportSchema,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.js';
import { doc, jsonSchema, type ApiContext } from '../route-kit.js';

/** Default body cap of a report upload (configurable: `reports.maxBodyBytes`). */
export const DEFAULT_REPORT_BODY_BYTES = 32 * 1024 * 1024;

export async function reportRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const receipt = jsonSchema(reportReceiptSchema);
  app.post<{ Body: z.infer<typeof reportUploadSchema> }>(
    API_ROUTES.reports,
    {
      bodyLimit: ctx.bodyLimit(ctx.reportBodyBytes),
      schema: { body: jsonSchema(reportUploadSchema) },
      config: doc('reporter', "send this host's verify report (the host is the token's)", {
        201: receipt,
        200: receipt,
      }),
    },
    async (request, reply) => {
      const host = request.sysattestCaller?.token?.host;
      const tokenId = request.sysattestCaller?.token?.id;
      // access.ts lets only reporter tokens here, and the store gives every one a host.
      if (host === undefined || tokenId === undefined) throw new Error('a reporter token without a host');
      // The JSON Schema checked shape and bounds; parsing again drops fields the protocol does not know.
      const report = verifyReportSchema.parse(request.body.report);
      const inconsistent = reportInconsistency(report);
      if (inconsistent !== undefined) throw new ApiError('BAD_REQUEST', `body/report: ${inconsistent}`);
      const outcome = await ctx.store.recordReport({
        tokenId,
        host,
        reportId: request.body.reportId,
        report,
      });
      if (outcome.kind === 'token-revoked')
        throw new ApiError('UNAUTHORIZED', 'the token is unknown or revoked');
      return reply.code(outcome.kind === 'stored' ? 201 : 200).send(outcome.receipt);
    },
  );
}
