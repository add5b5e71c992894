/**
 * The sysattest dashboard: a fastify plugin that renders the operator's pages as HTML on the
 * server, over a DashboardBackend the server implements. No front-end build, nothing loaded from
 * elsewhere: the stylesheet and the small script ship in `assets/`, charts are inline SVG.
 */
export { dashboardPlugin, type DashboardOptions } from './plugin.js';
export * from './backend.js';
export { escapeHtml } from './html.js';
