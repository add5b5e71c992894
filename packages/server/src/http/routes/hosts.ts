/**
 * The fleet for people and scripts: hosts with their latest verdict (reader tokens and above,
 * whether or not other reads need a token: a fleet's weak spots are not public), one host's
 * history, a stored report; and the operator's DELETE, which forgets a host and revokes its
 * reporter tokens. Every answer is a host's claim about itself, never an attestation.
 */
import {
  API_ROUTES,
  hostDetailAnswerSchema,
  hostForgottenSchema,
  hostListAnswerSchema,
  hostListQuerySchema,
  hostParams,
  hostReportParams,
  verifyReportSchema,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.js';
import { doc, jsonSchema, NO_QUERY, type ApiContext } from '../route-kit.js';

type HostParams = z.infer<ReturnType<typeof hostParams>>;
type HostReportParams = z.infer<ReturnType<typeof hostReportParams>>;

export async function hostRoutes(app: FastifyInstance, { store }: ApiContext): Promise<void> {
  app.get<{ Querystring: z.infer<typeof hostListQuerySchema> }>(
    API_ROUTES.hosts,
    {
      schema: { querystring: jsonSchema(hostListQuerySchema) },
      config: doc(
        'reader',
        'hosts in name order with their verdict now (stale included), filtered, by page',
        {
          200: jsonSchema(hostListAnswerSchema),
        },
      ),
    },
    async (request) => {
      const q = request.query;
      return store.hostsPage({
        ...(q.verdict === undefined ? {} : { verdict: q.verdict }),
        ...(q.platform === undefined ? {} : { platform: q.platform }),
        ...(q.limit === undefined ? {} : { limit: Number(q.limit) }),
        ...(q.after === undefined ? {} : { after: q.after }),
      });
    },
  );

  app.get<{ Params: HostParams }>(
    API_ROUTES.host,
    {
      schema: { params: jsonSchema(hostParams()), querystring: NO_QUERY },
      config: doc('reader', 'one host and its history of reports, newest first', {
        200: jsonSchema(hostDetailAnswerSchema),
      }),
    },
    async (request) => {
      const detail = await store.hostDetail(request.params.name);
      if (detail === undefined) throw new ApiError('NOT_FOUND', `no host ${request.params.name}`);
      return detail;
    },
  );

  app.get<{ Params: HostReportParams }>(
    API_ROUTES.hostReport,
    {
      schema: { params: jsonSchema(hostReportParams()), querystring: NO_QUERY },
      config: doc('reader', 'a stored report, as the host sent it (its claim)', {
        200: jsonSchema(verifyReportSchema),
      }),
    },
    async (request) => {
      const { name, reportId } = request.params;
      const report = await store.hostReport(name, reportId);
      if (report === undefined) throw new ApiError('NOT_FOUND', `no report ${reportId} of host ${name}`);
      return report;
    },
  );

  app.delete<{ Params: HostParams }>(
    API_ROUTES.adminHost,
    {
      schema: { params: jsonSchema(hostParams()), querystring: NO_QUERY },
      config: doc('admin', 'forget a host: its reports are deleted, its reporter tokens revoked', {
        200: jsonSchema(hostForgottenSchema),
      }),
    },
    async (request) => ({ host: request.params.name, ...(await store.forgetHost(request.params.name)) }),
  );
}
