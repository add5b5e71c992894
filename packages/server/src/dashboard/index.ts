import { dashboardPlugin } from '@sysattest/dashboard';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/index.js';
import { StoreDashboardBackend, type MetricsSource } from './store-backend.js';

export { StoreDashboardBackend, type MetricsSource, type StoreBackendOptions } from './store-backend.js';

/** Where the dashboard is served. */
export const DASHBOARD_PREFIX = '/dashboard';

export interface DashboardMount {
  store: Store;
  /** The server's request metrics, for the Health page. */
  metrics?: MetricsSource;
  /** Reading needs a login (the API's readsNeedToken). */
  readsNeedToken?: boolean;
  /** What session cookies are signed with (see session-secret.ts); never from the database. */
  sessionSecret: Uint8Array;
}

/**
 * Serves the dashboard at /dashboard/ (and sends / there): @sysattest/dashboard's pages over the
 * store. The plugin is encapsulated: its form parser, error pages and 404 page apply to its own
 * routes only, never to the JSON API.
 */
export function registerDashboard(app: FastifyInstance, mount: DashboardMount): void {
  const backend = new StoreDashboardBackend(
    mount.store,
    mount.metrics === undefined ? {} : { metrics: mount.metrics },
  );
  void app.register(dashboardPlugin, {
    prefix: DASHBOARD_PREFIX,
    backend,
    readsNeedLogin: mount.readsNeedToken ?? false,
    sessionSecret: mount.sessionSecret,
  });
  app.get('/', async (_request, reply) => reply.redirect(`${DASHBOARD_PREFIX}/`, 303));
}
