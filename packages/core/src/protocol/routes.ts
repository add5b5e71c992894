/**
 * The paths of the server's API, in fastify's form (`:name` for a path parameter). The server
 * registers its routes under these; clients fill them in with `routePath`.
 */
export const API_ROUTES = {
  healthz: '/healthz',
  readyz: '/readyz',
  metrics: '/metrics',
  openapi: '/v1/openapi.json',
  keys: '/v1/keys',
  manifests: '/v1/manifests',
  manifest: '/v1/manifests/:digest',
  catalogs: '/v1/catalogs',
  catalog: '/v1/catalogs/:digest',
  lookup: '/v1/lookup',
  reverseLookup: '/v1/reverse-lookup',
  jobs: '/v1/jobs',
  claimJobs: '/v1/jobs/claim',
  heartbeatJob: '/v1/jobs/:id/heartbeat',
  completeJob: '/v1/jobs/:id/complete',
  failJob: '/v1/jobs/:id/fail',
  requeueJob: '/v1/jobs/:id/requeue',
  // Hosts: reports (reporter tokens, each bound to its host) and the fleet's answers.
  reports: '/v1/reports',
  hosts: '/v1/hosts',
  host: '/v1/hosts/:name',
  hostReport: '/v1/hosts/:name/reports/:reportId',
  // The operator's (admin tokens only).
  adminTokens: '/v1/admin/tokens',
  adminRevokeToken: '/v1/admin/tokens/:id/revoke',
  adminKeys: '/v1/admin/keys',
  adminKey: '/v1/admin/keys/:fingerprint',
  adminTracked: '/v1/admin/tracked',
  adminUntrack: '/v1/admin/tracked/untrack',
  adminConflicts: '/v1/admin/conflicts',
  adminConflictDocument: '/v1/admin/conflicts/:id/document',
  adminHost: '/v1/admin/hosts/:name',
} as const;

export type ApiRoute = (typeof API_ROUTES)[keyof typeof API_ROUTES];

/** The names of a route's path parameters: `'/v1/jobs/:id/fail'` → `'id'`. */
type ParamsOf<R extends string> = R extends `${string}:${infer P}/${infer Rest}`
  ? P | ParamsOf<`/${Rest}`>
  : R extends `${string}:${infer P}`
    ? P
    : never;

/**
 * A route's path with its parameters filled in, each URI-encoded: `routePath(API_ROUTES.failJob,
 * { id: 7 })` is `/v1/jobs/7/fail`.
 */
export function routePath<R extends ApiRoute>(
  route: R,
  params: Record<ParamsOf<R>, string | number>,
): string {
  return route.replace(/:([A-Za-z]+)/g, (_, name: string) =>
    encodeURIComponent(String((params as Record<string, string | number>)[name])),
  );
}
