/**
 * The hosts' pages (issue 19): the list, a host's page, its reports to download, and the hosts
 * behind an upgrade. All need a login (hostsReadable), even when other reads are public.
 */
import type { FastifyInstance } from 'fastify';
import { hostsReadable } from '../access.js';
import { DashboardError, HOST_VERDICTS, type HostFilter, type HostVerdict } from '../backend.js';
import type { DashboardContext } from '../context.js';
import { hostPage, hostsBehindPage, hostsPage } from '../host-pages.js';
import { choice, hostName, MAX_HOST_NAME, one, pageOf, reportId, type Query } from '../input.js';
import { sendDownload, sendPage } from '../replies.js';

const HOSTS_PAGE_SIZE = 100;

export async function hostRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = hostsReadable(ctx);

  app.get<{ Querystring: Query }>('/hosts', { preHandler }, async (request, reply) => {
    const filter = hostFilter(request.query);
    const view = await backend.hosts({ ...filter, limit: HOSTS_PAGE_SIZE });
    return sendPage(reply, hostsPage(ctx.state(request).view, view, filter));
  });

  app.get<{ Params: { name: string } }>('/hosts/:name', { preHandler }, async (request, reply) => {
    const name = hostName(request.params.name);
    const detail = await backend.host(name);
    if (detail === undefined) throw new DashboardError(404, `no host ${name}`);
    const v = ctx.state(request).view;
    // An admin sees the host's reporter tokens, to revoke one without forgetting the host.
    const tokens =
      v.principal?.role === 'admin'
        ? (await backend.tokens()).filter((t) => t.role === 'reporter' && t.host === name)
        : undefined;
    return sendPage(reply, hostPage(v, detail, tokens));
  });

  app.get<{ Params: { name: string; file: string } }>(
    '/hosts/:name/reports/:file',
    { preHandler },
    async (request, reply) => {
      const name = hostName(request.params.name);
      const id = reportId(request.params.file);
      const bytes = await backend.hostReport(name, id);
      if (bytes === undefined) throw new DashboardError(404, `no report ${id} of host ${name}`);
      const file = { type: 'application/json', name: `${name}_${id}`, extension: '.json', noStore: true };
      return sendDownload(reply, { ...file, body: Buffer.from(bytes) });
    },
  );

  app.get<{ Querystring: Query }>('/upgrades/hosts', { preHandler }, async (request, reply) => {
    const ref = {
      platform: one(request.query, 'platform', 200),
      name: one(request.query, 'name', 200),
      arch: one(request.query, 'arch', 50),
      version: one(request.query, 'version', 200),
    };
    if (Object.values(ref).some((x) => x === ''))
      throw new DashboardError(400, 'name the platform, package, architecture and version');
    const page = await backend.hostsBehind(ref, pageOf(request.query, HOSTS_PAGE_SIZE));
    return sendPage(reply, hostsBehindPage(ctx.state(request).view, ref, page));
  });
}

/** The list's filter: a verdict, a platform, and the last host name of the previous page. */
function hostFilter(q: Query): HostFilter & { after?: string } {
  const verdict = choice<HostVerdict>(q, 'verdict', 20, HOST_VERDICTS);
  const platform = one(q, 'platform', 200) || undefined;
  const after = one(q, 'after', MAX_HOST_NAME) || undefined;
  return {
    ...(verdict === undefined ? {} : { verdict }),
    ...(platform === undefined ? {} : { platform }),
    ...(after === undefined ? {} : { after }),
  };
}
