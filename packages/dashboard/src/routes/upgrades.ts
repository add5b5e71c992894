/** The upgrades the fleet's platforms shipped in a window (a readable page). */
import type { FastifyInstance } from 'fastify';
import { readable } from '../access.js';
import { DashboardError, UPGRADE_WINDOWS, type UpgradesReport, type UpgradeWindow } from '../backend.js';
import type { DashboardContext } from '../context.js';
import { choice, offsetOf, one, PAGE_SIZE, type Query } from '../input.js';
import type { View } from '../layout.js';
import { upgradesPage } from '../pages.js';
import { sendPage } from '../replies.js';

export async function upgradeRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  app.get<{ Querystring: Query }>('/upgrades', { preHandler: readable(ctx) }, async (request, reply) => {
    const w: UpgradeWindow = choice(request.query, 'window', 10, UPGRADE_WINDOWS) ?? '7d';
    const platform = one(request.query, 'platform', 200) || undefined;
    const platforms = await backend.platforms();
    if (platform !== undefined && !platforms.includes(platform))
      throw new DashboardError(404, `no platform ${platform}`);
    const report = await backend.upgrades(w, platform, { offset: offsetOf(request.query), limit: PAGE_SIZE });
    const v = ctx.state(request).view;
    return sendPage(reply, upgradesPage(v, w, platform, platforms, shownTo(v, report)));
  });
}

/** The hosts behind each upgrade only for a login (hostsReadable). */
function shownTo(v: View, report: UpgradesReport): UpgradesReport {
  if (v.principal !== undefined) return report;
  const items = report.events.items.map(({ hostsBehind: _, ...e }) => e);
  return { ...report, events: { ...report.events, items } };
}
