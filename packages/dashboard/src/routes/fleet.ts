/** The fleet's platforms, its packages and their manifests (readable pages, and the signed documents). */
import type { FastifyInstance } from 'fastify';
import { readable } from '../access.js';
import { DashboardError } from '../backend.js';
import type { DashboardContext } from '../context.js';
import { manifestDigest, offsetOf, one, packageName, pageOf, PAGE_SIZE, type Query } from '../input.js';
import { fleetPage, manifestPage, packagePage, packagesPage } from '../pages.js';
import { sendDownload, sendPage } from '../replies.js';

const FILES_PAGE_SIZE = 200;

export async function fleetRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = readable(ctx);

  app.get('/', { preHandler }, async (request, reply) => {
    const v = ctx.state(request).view;
    const rows = await backend.fleet();
    // Hosts per platform only for a login (hostsReadable).
    const shown = v.principal === undefined ? rows.map(({ hosts: _, ...r }) => r) : rows;
    return sendPage(reply, fleetPage(v, shown, ctx.staleHours));
  });

  app.get<{ Querystring: Query }>('/packages', { preHandler }, async (request, reply) => {
    const q = one(request.query, 'q', 200).trim();
    const page = pageOf(request.query, PAGE_SIZE);
    const results = q === '' ? undefined : await backend.searchPackages(q, page);
    return sendPage(reply, packagesPage(ctx.state(request).view, q, results));
  });

  app.get<{ Params: { name: string } }>('/packages/:name', { preHandler }, async (request, reply) => {
    const name = packageName(request.params.name);
    return sendPage(reply, packagePage(ctx.state(request).view, name, await backend.packageDetail(name)));
  });

  await manifestRoutes(app, ctx);
}

async function manifestRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = readable(ctx);

  app.get<{ Params: { digest: string }; Querystring: Query }>(
    '/manifests/:digest',
    { preHandler },
    async (request, reply) => {
      const digest = manifestDigest(request.params.digest);
      const filter = one(request.query, 'path', 4096);
      const m = await backend.manifest(digest);
      // The offset is read only for a manifest that exists: an unknown digest is a 404 first.
      const files =
        m === undefined
          ? undefined
          : await backend.manifestFiles(digest, filter, {
              offset: offsetOf(request.query),
              limit: FILES_PAGE_SIZE,
            });
      if (m === undefined || files === undefined)
        throw new DashboardError(404, 'no manifest with this digest');
      return sendPage(reply, manifestPage(ctx.state(request).view, m, filter, files));
    },
  );

  const documentOf = async (digest: string) => {
    const doc = await backend.manifestDocument(manifestDigest(digest));
    if (doc === undefined) throw new DashboardError(404, 'no manifest with this digest');
    return doc;
  };

  app.get<{ Params: { digest: string } }>(
    '/manifests/:digest/manifest.json',
    { preHandler },
    async (request, reply) => {
      const doc = await documentOf(request.params.digest);
      const file = { type: 'application/json', name: doc.baseName, extension: '.json' };
      return sendDownload(reply, { ...file, body: Buffer.from(doc.bytes) });
    },
  );

  app.get<{ Params: { digest: string } }>(
    '/manifests/:digest/manifest.json.asc',
    { preHandler },
    async (request, reply) => {
      const doc = await documentOf(request.params.digest);
      const file = { type: 'application/pgp-signature', name: doc.baseName, extension: '.json.asc' };
      return sendDownload(reply, { ...file, body: doc.signature });
    },
  );
}
