/**
 * Test support for the end-to-end `sysattest verify` tests (not part of the client's API): the
 * real CLI run as a child process, a real `sysattest-server` on a SQLite file trusting a test
 * generator key, and real rpms built with `rpmbuild`. Used by verify-rootfs.test.ts (Debian) and
 * verify-rpm-root.test.ts (rpm and apk roots).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SignedDocument } from '@sysattest/core';
import type { VerifyReport } from './report.js';

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
  const run: CliRun = { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (args.includes('json') && r.stdout.startsWith('{')) run.report = JSON.parse(r.stdout) as VerifyReport;
  return run;
}

/** Runs a command that must succeed; its stdout. */
export function runOk(cmd: string, args: readonly string[]): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
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
 * A real server process on a SQLite file under `home`, trusting the armored key in `keyFile`,
 * on a free port, with a generator token for uploads.
 */
export async function startE2EServer(home: string, keyFile: string): Promise<E2EServer> {
  const dbFile = path.join(home, 'server.sqlite');
  const token = runOk(process.execPath, [
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
    process.execPath,
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
 * Builds the binary rpm(s) of a spec file's text with `rpmbuild -bb` in `work` (no debuginfo,
 * no post-install processing such as stripping), SHA-256 file digests unless told otherwise;
 * returns the paths of the rpms made.
 */
export function rpmbuild(work: string, name: string, spec: string, digestAlgorithm = 8): string[] {
  const file = path.join(work, `${name}.spec`);
  fs.writeFileSync(file, spec);
  const top = path.join(work, `top-${name}`);
  runOk('rpmbuild', [
    '-bb',
    '--define',
    `_topdir ${top}`,
    '--define',
    'debug_package %{nil}',
    '--define',
    '__os_install_post %{nil}',
    '--define',
    `_binary_filedigest_algorithm ${digestAlgorithm}`,
    file,
  ]);
  const out: string[] = [];
  for (const d of fs.readdirSync(path.join(top, 'RPMS')))
    for (const f of fs.readdirSync(path.join(top, 'RPMS', d))) out.push(path.join(top, 'RPMS', d, f));
  return out;
}

/** A tool the tests need, or an error that says which Debian package provides it. */
export function requireTool(tool: string, debianPackage: string): void {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `these tests need ${tool} (apt-get install ${debianPackage}): ${r.error?.message ?? r.stderr}`,
    );
  }
}
