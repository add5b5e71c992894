/**
 * Test support for the end-to-end `sysattest verify` tests (not part of the client's API): the
 * real CLI run as a child process, a real `sysattest-server` on a SQLite file trusting a test
 * generator key, and tampering with a root undone after its check. Used by verify-rootfs.test.ts
 * (Debian) and verify-rpm-root.test.ts (rpm and apk roots); the rpms and roots those build come
 * from the generator's testkit/families.js.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SignedDocument } from '@sysattest/core';
import { run } from '@sysattest/generator/dist/testkit/families.js';
import type { VerifyReport } from '../verify/report.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const CLIENT_BIN = path.join(repoRoot, 'packages/client/bin/sysattest.js');
export const SERVER_BIN = path.join(repoRoot, 'packages/server/bin/sysattest-server.js');

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
  /** The parsed report, when `--format json` printed one. */
  report?: VerifyReport;
}

/** Runs the real `sysattest` CLI; `env` adds to (or with '' clears) the environment. */
export function sysattestCli(args: readonly string[], env: Record<string, string> = {}): CliRun {
  const r = spawnSync(process.execPath, [CLIENT_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  return cliRun(args, r.status ?? -1, r.stdout, r.stderr);
}

/**
 * As sysattestCli, without blocking the event loop: for tests that serve the CLI from this same
 * process (relay.ts), which spawnSync would starve.
 */
export function sysattestCliAsync(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<CliRun> {
  const child = spawn(process.execPath, [CLIENT_BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8') + (signal === null ? '' : `(killed by ${signal})`);
      resolve(cliRun(args, code ?? -1, Buffer.concat(out).toString('utf8'), stderr));
    });
  });
}

function cliRun(args: readonly string[], status: number, stdout: string, stderr: string): CliRun {
  const run: CliRun = { status, stdout, stderr };
  if (args.includes('json') && stdout.startsWith('{')) run.report = JSON.parse(stdout) as VerifyReport;
  return run;
}

export interface E2EServer {
  url: string;
  /** The server's SQLite file. */
  dbFile: string;
  /** POSTs a generator upload (`/v1/manifests`, `/v1/catalogs`) with the generator token. */
  post(route: string, body: unknown): Promise<void>;
  /** Uploads a signed manifest file as the generator writes it (`FILE` and `FILE.asc`). */
  uploadManifest(file: string): Promise<void>;
  uploadCatalog(signed: SignedDocument): Promise<void>;
  stop(): void;
}

/**
 * The runtime the server runs on: the one running the tests, unless SYSATTEST_TEST_SERVER_NODE
 * names another (scripts/test.sh runs the client's tests on Node 22 and 24 against a server on
 * the Node its better-sqlite3 was built for).
 */
export const SERVER_NODE = process.env.SYSATTEST_TEST_SERVER_NODE || process.execPath;

/**
 * A real server process on a SQLite file under `home`, trusting the armored key in `keyFile`,
 * on a free port, with a generator token for uploads.
 */
export async function startE2EServer(home: string, keyFile: string): Promise<E2EServer> {
  const dbFile = path.join(home, 'server.sqlite');
  const token = run(SERVER_NODE, [
    SERVER_BIN,
    'token',
    'create',
    '--role',
    'generator',
    '--name',
    'e2e',
    '--database',
    dbFile,
  ]).trim();
  const server: ChildProcess = spawn(
    SERVER_NODE,
    [SERVER_BIN, 'serve', '--port', '0', '--database', dbFile, '--trust-key', keyFile],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  server.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    server.once('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  const post = async (route: string, body: unknown): Promise<void> => {
    const r = await fetch(`${url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    assert.ok(r.status === 200 || r.status === 201, `${route}: ${r.status} ${await r.text()}`);
  };
  return {
    url,
    dbFile,
    post,
    uploadManifest: (file) =>
      post('/v1/manifests', {
        manifest: fs.readFileSync(file).toString('base64'),
        signature: fs.readFileSync(`${file}.asc`, 'utf8'),
      }),
    uploadCatalog: (signed) =>
      post('/v1/catalogs', {
        catalog: Buffer.from(signed.bytes).toString('base64'),
        signature: signed.signature,
      }),
    stop: () => {
      server.kill('SIGTERM');
    },
  };
}

/**
 * Runs `change` under `root`, then `check`, then puts the paths (relative to `root`) back exactly
 * as they were, from copies made in a scratch directory under `scratch`.
 */
export async function tampered(
  root: string,
  paths: readonly string[],
  change: () => void,
  check: () => void | Promise<void>,
  scratch = os.tmpdir(),
): Promise<void> {
  const backup = fs.mkdtempSync(path.join(scratch, 'sysattest-backup-'));
  const saved = paths.map((p, i) => {
    const host = path.join(root, p);
    const copy = path.join(backup, String(i));
    let exists = true;
    try {
      fs.lstatSync(host);
    } catch {
      exists = false;
    }
    if (exists) run('cp', ['-a', host, copy]);
    return { host, copy, exists };
  });
  try {
    change();
    await check();
  } finally {
    for (const s of saved) {
      fs.rmSync(s.host, { force: true, recursive: true });
      if (s.exists) run('cp', ['-a', s.copy, s.host]);
    }
    fs.rmSync(backup, { recursive: true, force: true });
  }
}
