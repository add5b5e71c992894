/**
 * Test support for the compromised-server tests (not part of the client's API):
 *  - a relay: an HTTP server on 127.0.0.1 in front of a real `sysattest-server` that passes every
 *    request through and rewrites the answers a test asks it to, as a server (or a network) in an
 *    attacker's hands would. Answers are unsigned, so the relay can say anything a server can;
 *    what it cannot do is sign, which is the point of the tests that use it;
 *  - a small fake Debian root with real files, whose manifests and catalog snapshots are made
 *    from those files and really signed (no podman: seconds, not minutes).
 * The wire format is the one packages/client/src/transport/http-source.ts parses.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import {
  SigningKey,
  generateSigningKey,
  sha256Hex,
  signCatalog,
  signManifest,
  type Manifest,
  type ManifestEntry,
  type ReverseLookupHit,
  type SignedDocument,
} from '@sysattest/core';
import { listingCatalog, type ListedVersion } from './catalogs.js';

// ---------------------------------------------------------------------------------------------
// The wire: what the server answers, as the relay sees it (extra fields pass through untouched).

export interface SnapshotInfo {
  platform: string;
  digest: string;
  generatedAt: string;
  [more: string]: unknown;
}

export interface LookupAnswerItem {
  name: string;
  version: string;
  arch: string;
  status: 'ok' | 'pending' | 'not-in-catalog' | 'unknown-platform';
  newestVersion?: string;
  /** ok: the digest, and with `documents: true` the bytes (base64) and signature. */
  manifest?: { digest: string; bytes?: string; signature?: string };
  job?: { id: number; state: string };
  [more: string]: unknown;
}

export interface LookupAnswer {
  platform: string;
  catalog?: SnapshotInfo;
  foreignCatalogs?: SnapshotInfo[];
  items: LookupAnswerItem[];
}

export type ReverseHit = ReverseLookupHit;

export interface ReverseAnswer {
  results: { sha256: string; hits: ReverseHit[]; truncated?: true }[];
}

/** An answer the relay gives instead of the server's. */
export interface RelayAnswer {
  status: number;
  body: unknown;
}

/** What the relay changes; `{}` passes everything through. */
export interface RelayRules {
  /** Rewrites a `POST /v1/lookup` answer in place; `documents`: what the client asked for. */
  lookup?: (answer: LookupAnswer, asked: { documents: boolean }) => void;
  /** Answers `GET /v1/manifests/{digest}` itself; undefined passes the request through. */
  manifest?: (digest: string) => RelayAnswer | undefined;
  /** Rewrites a `POST /v1/reverse-lookup` answer in place. */
  reverseLookup?: (answer: ReverseAnswer) => void;
}

export interface RelayRequest {
  method: string;
  path: string;
  /** `POST /v1/lookup`: whether the client asked for the documents. */
  documents?: boolean;
}

export interface Relay {
  url: string;
  /** What the relay does now (set by each test; `{}` passes everything through). */
  rules: RelayRules;
  /** Every request relayed, in order (for assertions on what the client asked). */
  requests: RelayRequest[];
  stop(): Promise<void>;
}

export interface RelayOptions {
  /** Largest request or answer body relayed (default 64 MiB); a larger one gets a 502. */
  maxBytes?: number;
  /** The relay stops by itself after this long (default 10 minutes), whatever the test does. */
  lifetimeMs?: number;
}

/** A relay on a free port of 127.0.0.1 in front of the server at `upstream`. */
export async function startRelay(upstream: string, options: RelayOptions = {}): Promise<Relay> {
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const relay: Omit<Relay, 'url' | 'stop'> = { rules: {}, requests: [] };
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      send(res, { status: 502, body: { error: { code: 'RELAY', message: String(e) } } });
    });
  });
  server.requestTimeout = 60_000;
  server.headersTimeout = 10_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://relay');
    const body = await readBounded(req, maxBytes);
    const seen: RelayRequest = { method, path: url.pathname };
    let asked: unknown;
    if (body.length > 0) {
      try {
        asked = JSON.parse(body.toString('utf8'));
      } catch {
        asked = undefined;
      }
    }
    if (method === 'POST' && url.pathname === '/v1/lookup') {
      seen.documents = (asked as { documents?: boolean } | undefined)?.documents !== false;
    }
    relay.requests.push(seen);

    const digest = /^\/v1\/manifests\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    if (method === 'GET' && digest !== undefined) {
      const own = relay.rules.manifest?.(digest);
      if (own !== undefined) return send(res, own);
    }

    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'accept', 'authorization']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const answer = await fetch(`${upstream}${url.pathname}${url.search}`, {
      method,
      headers,
      ...(body.length > 0 ? { body } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    const bytes = Buffer.from(await answer.arrayBuffer());
    if (bytes.length > maxBytes) throw new Error(`the server's answer is over ${maxBytes} bytes`);
    const json = (answer.headers.get('content-type') ?? '').includes('json');
    if (!json || answer.status !== 200) {
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
      res.end(bytes);
      return;
    }
    const parsed = JSON.parse(bytes.toString('utf8')) as unknown;
    if (method === 'POST' && url.pathname === '/v1/lookup') {
      relay.rules.lookup?.(parsed as LookupAnswer, { documents: seen.documents === true });
    } else if (method === 'POST' && url.pathname === '/v1/reverse-lookup') {
      relay.rules.reverseLookup?.(parsed as ReverseAnswer);
    }
    send(res, { status: 200, body: parsed });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return stopped;
  };
  setTimeout(() => void stop(), options.lifetimeMs ?? 10 * 60_000).unref();
  return Object.assign(relay, { url: `http://127.0.0.1:${port}`, stop });
}

function send(res: http.ServerResponse, answer: RelayAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBounded(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    length += part.length;
    if (length > maxBytes) throw new Error(`request body over ${maxBytes} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Rules a compromised server plays. Each returns RelayRules; combine them with `rules(...)`.

/** Several rules at once, applied in the order given. */
export function rules(...all: RelayRules[]): RelayRules {
  return {
    lookup: (answer, asked) => {
      for (const r of all) r.lookup?.(answer, asked);
    },
    manifest: (digest) => {
      for (const r of all) {
        const own = r.manifest?.(digest);
        if (own !== undefined) return own;
      }
      return undefined;
    },
    reverseLookup: (answer) => {
      for (const r of all) r.reverseLookup?.(answer);
    },
  };
}

function eachItem(
  name: string,
  change: (item: LookupAnswerItem, documents: boolean) => LookupAnswerItem,
): RelayRules['lookup'] {
  return (answer, { documents }) => {
    answer.items = answer.items.map((item) => (item.name === name ? change(item, documents) : item));
  };
}

/**
 * A `GET /v1/manifests/{digest}` answer as the server shapes it, naming what the bytes say they
 * are (a BOM before them or bytes that are no JSON at all: nothing).
 */
function manifestAnswer(doc: { bytes: Uint8Array; signature: string }): RelayAnswer {
  let about = { platform: '', name: '', version: '', arch: '' };
  try {
    const m = JSON.parse(
      Buffer.from(doc.bytes)
        .toString('utf8')
        .replace(/^\uFEFF/, ''),
    ) as Manifest;
    about = {
      platform: m.platform,
      name: m.package.name,
      version: m.package.version,
      arch: m.package.architecture,
    };
  } catch {
    // not JSON: the answer names nothing
  }
  return {
    status: 200,
    body: {
      digest: sha256Hex(doc.bytes),
      ...about,
      manifest: Buffer.from(doc.bytes).toString('base64'),
      signature: doc.signature,
    },
  };
}

/**
 * Package `name`'s manifest is `doc` (bytes and signature as given, signed or not): its digest in
 * the digests-only lookup, its bytes in the full one and from `GET /v1/manifests/{digest}`.
 */
export function serveManifest(name: string, doc: { bytes: Uint8Array; signature: string }): RelayRules {
  const digest = sha256Hex(doc.bytes);
  return {
    lookup: eachItem(name, (item, documents) => {
      const { job: _job, withdrawnAt: _withdrawn, ...rest } = item;
      return {
        ...rest,
        status: 'ok',
        manifest: documents
          ? { digest, bytes: Buffer.from(doc.bytes).toString('base64'), signature: doc.signature }
          : { digest },
      };
    }),
    manifest: (asked) => (asked === digest ? manifestAnswer(doc) : undefined),
  };
}

/** Package `name` gets `status` (no manifest; `pending` with a queued job) in every lookup. */
export function answerStatus(
  name: string,
  status: 'pending' | 'not-in-catalog' | 'unknown-platform',
): RelayRules {
  return {
    lookup: eachItem(name, (item) => {
      const { manifest: _manifest, job: _job, withdrawnAt: _withdrawn, ...rest } = item;
      return { ...rest, status, ...(status === 'pending' ? { job: { id: 4242, state: 'queued' } } : {}) };
    }),
  };
}

/**
 * The digests-only lookup offers `digest` for package `name`; the full lookup and
 * `GET /v1/manifests/{digest}` then deliver `delivered` (bytes and signature, verifying or not),
 * or nothing at all (the full lookup says `pending`, the GET 404).
 */
export function offerDigest(
  name: string,
  digest: string,
  delivered: { bytes: Uint8Array; signature: string } | undefined,
): RelayRules {
  return {
    lookup: eachItem(name, (item, documents) => {
      if (!documents) return { ...item, status: 'ok', manifest: { digest } };
      if (delivered === undefined) {
        const { manifest: _manifest, ...rest } = item;
        return { ...rest, status: 'pending', job: { id: 4242, state: 'queued' } };
      }
      return {
        ...item,
        status: 'ok',
        manifest: {
          digest,
          bytes: Buffer.from(delivered.bytes).toString('base64'),
          signature: delivered.signature,
        },
      };
    }),
    manifest: (asked) =>
      asked !== digest
        ? undefined
        : delivered === undefined
          ? { status: 404, body: { error: { code: 'NOT_FOUND', message: `no manifest ${digest}` } } }
          : manifestAnswer(delivered),
  };
}

/**
 * Every lookup names `snapshot` as the platform's catalog snapshot (an older one: a rollback), or
 * none at all (undefined: the snapshot withheld); foreign snapshots go too.
 */
export function nameSnapshot(snapshot: SnapshotInfo | undefined): RelayRules {
  return {
    lookup: (answer) => {
      delete answer.catalog;
      answer.foreignCatalogs = [];
      if (snapshot !== undefined) answer.catalog = snapshot;
    },
  };
}

/** The reverse lookup says each content hash is known from these hits (whatever is true). */
export function claimKnown(claims: ReadonlyMap<string, ReverseHit[]>): RelayRules {
  return {
    reverseLookup: (answer) => {
      answer.results = answer.results.map((r) => {
        const hits = claims.get(r.sha256);
        return hits === undefined ? r : { sha256: r.sha256, hits };
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A fake Debian bookworm root with real files, and its signed manifests and catalogs.

export const FAKE_RELEASE = 'debian/bookworm';

export interface FakeFile {
  /** Absolute path inside the root. */
  path: string;
  content: string;
  mode: number;
}

export interface FakePackage {
  name: string;
  version: string;
  /** `amd64` or `all`. */
  arch: string;
  files: FakeFile[];
}

export interface FakeWorld {
  root: string;
  packages: readonly FakePackage[];
  key: SigningKey;
  /** The generator's armored public key, as a file (`--keyring`, the server's `--trust-key`). */
  keyFile: string;
  /** The manifest a generator would sign for `p`, from its files as declared (`change` edits it). */
  manifest(p: FakePackage, change?: (m: Manifest) => void): Manifest;
  /** That manifest, signed by the generator key. */
  signedManifest(p: FakePackage, change?: (m: Manifest) => void): Promise<SignedDocument>;
  /**
   * A catalog snapshot of the native platform taken at `generatedAt`, listing every installed
   * version plus `extra` ones (name, version, arch), signed by the generator key.
   */
  catalog(generatedAt: Date, extra?: readonly [string, string, string][]): Promise<SignedDocument>;
}

/** The directories above a path, outermost first (`/usr`, `/usr/bin` for `/usr/bin/x`). */
function parents(p: string): string[] {
  const out: string[] = [];
  for (let d = path.posix.dirname(p); d !== '/'; d = path.posix.dirname(d)) out.unshift(d);
  return out;
}

function pathsOf(p: FakePackage): string[] {
  const all = new Set<string>();
  for (const f of p.files) for (const x of [...parents(f.path), f.path]) all.add(x);
  return [...all].sort();
}

/** `generatedAt` as the schemas want it: whole seconds, UTC. */
export function timestampOf(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Writes the root under `dir` (files, an os-release, a dpkg database with no diversion and no
 * statoverride) and makes a generator key. Directories are 0755 and everything belongs to the
 * user running the test, which the manifests record.
 */
export async function makeFakeWorld(dir: string, packages: readonly FakePackage[]): Promise<FakeWorld> {
  const root = path.join(dir, 'root');
  const at = (p: string): string => path.join(root, p);
  fs.mkdirSync(at('etc'), { recursive: true });
  fs.writeFileSync(
    at('etc/os-release'),
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
  );
  for (const p of packages) {
    for (const d of pathsOf(p).filter((x) => !p.files.some((f) => f.path === x))) {
      fs.mkdirSync(at(d), { recursive: true });
      fs.chmodSync(at(d), 0o755);
    }
    for (const f of p.files) {
      fs.writeFileSync(at(f.path), f.content);
      fs.chmodSync(at(f.path), f.mode);
    }
  }
  const admin = at('var/lib/dpkg');
  fs.mkdirSync(path.join(admin, 'info'), { recursive: true });
  fs.writeFileSync(path.join(admin, 'info/format'), '1\n');
  fs.writeFileSync(
    path.join(admin, 'status'),
    packages
      .map(
        (p) =>
          [
            `Package: ${p.name}`,
            'Status: install ok installed',
            `Architecture: ${p.arch}`,
            `Version: ${p.version}`,
          ].join('\n') + '\n\n',
      )
      .join(''),
  );
  for (const p of packages) {
    fs.writeFileSync(path.join(admin, 'info', `${p.name}.list`), ['/.', ...pathsOf(p)].join('\n') + '\n');
  }

  const generated = await generateSigningKey({ name: 'relay test generator' });
  const key = await SigningKey.fromArmored(generated.armoredSecretKey);
  const keyFile = path.join(dir, 'generator.asc');
  fs.writeFileSync(keyFile, generated.armoredPublicKey);
  const native = `${FAKE_RELEASE}/amd64`;

  const manifest = (p: FakePackage, change?: (m: Manifest) => void): Manifest => {
    const entries: ManifestEntry[] = pathsOf(p).map((x) => {
      const st = fs.lstatSync(at(x));
      const common = {
        path: x,
        mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
        uid: st.uid,
        gid: st.gid,
      };
      const file = p.files.find((f) => f.path === x);
      if (file === undefined) return { type: 'dir', ...common };
      const bytes = Buffer.from(file.content);
      return {
        type: 'file',
        ...common,
        mode: file.mode.toString(8).padStart(4, '0'),
        size: bytes.length,
        sha256: sha256Hex(bytes),
      };
    });
    const m: Manifest = {
      schema: 'sysattest.manifest',
      schemaVersion: 1,
      platform: `${FAKE_RELEASE}/${p.arch}`,
      package: {
        name: p.name,
        version: p.version,
        architecture: p.arch,
        source: { name: p.name, version: p.version },
      },
      provenance: {
        generatedAt: timestampOf(new Date()),
        generator: { name: 'relay-testkit', version: '0' },
        keyFingerprint: key.fingerprint,
        image: { id: 'fake-image' },
        installer: 'apt 2.6.1',
      },
      entries,
    };
    change?.(m);
    return m;
  };

  const catalog = (
    generatedAt: Date,
    extra: readonly [string, string, string][] = [],
  ): Promise<SignedDocument> => {
    const versions: ListedVersion[] = [
      ...packages.map((p): ListedVersion => [p.name, p.version, p.arch]),
      ...extra,
    ];
    const content = listingCatalog({
      platform: native,
      generatedAt: timestampOf(generatedAt),
      keyFingerprint: key.fingerprint,
      versions,
      generator: { name: 'relay-testkit', version: '0' },
      imageId: 'fake-image',
    });
    return signCatalog(content, key);
  };

  return {
    root,
    packages,
    key,
    keyFile,
    manifest,
    signedManifest: (p, change) => signManifest(manifest(p, change), key),
    catalog,
  };
}
