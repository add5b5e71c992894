/**
 * What one anonymous lookup costs the server (issue 14), measured on a real `sysattest-server
 * serve` process over SQLite: its peak RSS (VmHWM) while answering, the answer's status and size.
 *  - `duplicates`: one large manifest asked --copies times (default 2,500) in one request;
 *  - `many`: --many large manifests (default 40) asked once each, documents included;
 *  - `many-digests`: the same with `documents: false`.
 * Each scenario runs in a fresh server process, so its peak is its own. Everything goes through the
 * HTTP API (token and key through the server's CLI), so --server-bin can point at an older
 * build's bin/sysattest-server.js to measure "before".
 *
 * Usage: node packages/server/dist/bench/lookup-bounds.js [--server-bin FILE]
 *          [--manifest-mib 2] [--copies 2500] [--many 40] [--many-mib 5] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { signManifest } from '@sysattest/core';
import { SERVER_BIN } from '../testkit/server-process.js';
import { TestGenerator } from '../testkit/store.js';

const { values: args } = parseArgs({
  options: {
    'server-bin': { type: 'string', default: SERVER_BIN },
    'manifest-mib': { type: 'string', default: '2' },
    copies: { type: 'string', default: '2500' },
    many: { type: 'string', default: '40' },
    'many-mib': { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const bin = path.resolve(args['server-bin'] ?? SERVER_BIN);
const PLATFORM = 'debian/bookworm/amd64';
const MiB = 1024 * 1024;

interface Figures {
  scenario: string;
  requestBytes: number;
  status: number;
  answerBytes: number;
  seconds: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
}

function cli(dir: string, ...argv: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...argv, '--database', path.join(dir, 'bench.db')], {
    encoding: 'utf8',
    cwd: dir,
  });
  if (r.status !== 0) throw new Error(`sysattest-server ${argv.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** `status` field of /proc/PID/status, in MiB. */
function procMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

async function serve(dir: string): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [bin, 'serve', '--port', '0', '--database', path.join(dir, 'bench.db'), '--rate-limit', 'off'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+) /.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then(() => reject(new Error(`the server exited: ${stderr}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function post(url: string, route: string, body: unknown, token?: string): Promise<Response> {
  return fetch(`${url}${route}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
}

/** A manifest of about `mib` MiB: ~4 KiB paths (the same for every manifest, stored once). */
async function largeManifest(gen: TestGenerator, name: string, mib: number) {
  const files = Array.from({ length: Math.ceil((mib * MiB) / 4300) }, (_, i) => ({
    path: `/usr/share/${String(i).padStart(6, '0')}/${'p'.repeat(4000)}`,
    content: `${name} ${i}`,
  }));
  return signManifest(gen.manifestContent(PLATFORM, { name, version: '1.0-1' }, files), gen.key);
}

async function seed(dir: string, gen: TestGenerator, names: { name: string; mib: number }[]): Promise<void> {
  fs.writeFileSync(path.join(dir, 'generator.asc'), gen.armoredPublicKey);
  cli(dir, 'key', 'add', path.join(dir, 'generator.asc'));
  const token = cli(dir, 'token', 'create', '--role', 'generator', '--name', 'bench');
  const server = await serve(dir);
  try {
    const catalog = await gen.catalog(
      PLATFORM,
      '2026-11-20T00:00:00Z',
      names.map((n) => ({ name: n.name, version: '1.0-1' })),
    );
    const c = await post(
      server.url,
      '/v1/catalogs',
      { catalog: Buffer.from(catalog.bytes).toString('base64'), signature: catalog.signature },
      token,
    );
    if (!c.ok) throw new Error(`catalog upload: ${c.status} ${await c.text()}`);
    for (const n of names) {
      const m = await largeManifest(gen, n.name, n.mib);
      const r = await post(
        server.url,
        '/v1/manifests',
        { manifest: Buffer.from(m.bytes).toString('base64'), signature: m.signature },
        token,
      );
      if (!r.ok) throw new Error(`manifest upload: ${r.status} ${await r.text()}`);
    }
  } finally {
    await server.stop();
  }
}

/** One lookup against a fresh server process: status, answer size (counted, not kept), peak RSS. */
async function measure(dir: string, scenario: string, body: unknown): Promise<Figures> {
  const server = await serve(dir);
  try {
    const pid = server.child.pid as number;
    const rssBeforeMiB = procMiB(pid, 'VmRSS');
    const requestBytes = Buffer.byteLength(JSON.stringify(body));
    const started = performance.now();
    const res = await post(server.url, '/v1/lookup', body);
    let answerBytes = 0;
    for await (const chunk of res.body ?? []) answerBytes += (chunk as Uint8Array).length;
    const seconds = (performance.now() - started) / 1000;
    return {
      scenario,
      requestBytes,
      status: res.status,
      answerBytes,
      seconds: Math.round(seconds * 100) / 100,
      rssBeforeMiB,
      peakRssMiB: procMiB(pid, 'VmHWM'),
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-lookup-bounds-'));
  try {
    const gen = await TestGenerator.create('lookup bounds bench');
    const many = Array.from({ length: Number(args.many) }, (_, i) => ({
      name: `large${i}`,
      mib: Number(args['many-mib']),
    }));
    await seed(dir, gen, [{ name: 'huge', mib: Number(args['manifest-mib']) }, ...many]);
    const item = (name: string) => ({ name, version: '1.0-1', arch: 'amd64' });
    const results = [
      await measure(dir, 'duplicates', {
        platform: PLATFORM,
        items: Array.from({ length: Number(args.copies) }, () => item('huge')),
      }),
      await measure(dir, 'many', { platform: PLATFORM, items: many.map((m) => item(m.name)) }),
      await measure(dir, 'many-digests', {
        platform: PLATFORM,
        items: many.map((m) => item(m.name)),
        documents: false,
      }),
    ];
    if (args.json) {
      console.log(JSON.stringify({ serverBin: bin, results }, null, 2));
      return;
    }
    console.log(`server: ${bin}`);
    for (const r of results) {
      console.log(
        `${r.scenario.padEnd(13)} request ${(r.requestBytes / 1024).toFixed(0)} KiB → ${r.status}, ` +
          `answer ${(r.answerBytes / MiB).toFixed(1)} MiB in ${r.seconds} s; ` +
          `server RSS ${r.rssBeforeMiB} MiB before, peak ${r.peakRssMiB} MiB`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
