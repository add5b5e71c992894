/**
 * GET /v1/openapi.json: the OpenAPI document, assembled from the routes' own schemas (derived
 * from the protocol) and docs as they are added. Registered before the routes (wrapped with
 * fastify-plugin, so its onRoute hook sees every route of the app).
 */
import { API_ROUTES } from '@sysattest/core';
import type { RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { ERROR_SCHEMA, type RouteDoc } from './route-kit.js';

type Operations = Record<string, Record<string, unknown>>;

/** OpenAPI parameters from a route's params / querystring object schema. */
function parametersOf(schema: unknown, where: 'path' | 'query'): unknown[] {
  const o = schema as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  return Object.entries(o?.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (o?.required ?? []).includes(name),
    schema: s,
  }));
}

function responsesOf(routeDoc: RouteDoc | undefined): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const [status, body] of Object.entries(routeDoc?.responses ?? {})) {
    responses[status] = {
      description: Number(status) === 201 ? 'created' : 'ok',
      content: { [routeDoc?.produces ?? 'application/json']: { schema: body } },
    };
  }
  responses.default = {
    description: 'an error: { error: { code, message } } (codes: see errors.ts)',
    content: { 'application/json': { schema: ERROR_SCHEMA } },
  };
  return responses;
}

/** The operation object of one route (the same for each of its methods). */
function operationOf(route: RouteOptions): Record<string, unknown> {
  const schema = (route.schema ?? {}) as { body?: unknown; querystring?: unknown; params?: unknown };
  const routeDoc = (route.config as { sysattest?: RouteDoc } | undefined)?.sysattest;
  const access = routeDoc?.access ?? 'public';
  return {
    ...(routeDoc === undefined ? {} : { summary: routeDoc.summary }),
    'x-sysattest-access': access,
    ...(access === 'public' || access === 'read' ? {} : { security: [{ bearer: [] }] }),
    ...(schema.body === undefined
      ? {}
      : { requestBody: { required: true, content: { 'application/json': { schema: schema.body } } } }),
    parameters: [...parametersOf(schema.params, 'path'), ...parametersOf(schema.querystring, 'query')],
    responses: responsesOf(routeDoc),
  };
}

function describe(paths: Operations, route: RouteOptions): void {
  // The API is described; the dashboard's HTML pages (and `/`, which redirects to them) are not.
  if (route.url === API_ROUTES.openapi || route.url === '/' || route.url.startsWith('/dashboard')) return;
  const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
  const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
  const operation = operationOf(route);
  for (const method of methods) (paths[path] ??= {})[method.toLowerCase()] = operation;
}

export const openApiPlugin = fp(
  async (app) => {
    const paths: Operations = {};
    app.addHook('onRoute', (route) => describe(paths, route));
    app.get(API_ROUTES.openapi, async () => ({
      openapi: '3.1.0',
      info: {
        title: 'sysattest-server',
        version: '1',
        description:
          'x-sysattest-access says who may call a route: public, read (anyone, or a reader token when the ' +
          'server requires tokens for reads), or a token role and above (admin > generator > reader).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      paths,
    }));
  },
  { name: 'sysattest-openapi' },
);
