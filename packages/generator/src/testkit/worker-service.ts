import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey } from '@sysattest/core';
import { isGeneratorError } from '../errors.js';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';

/**
 * Helpers for the service tests: real server processes (`sysattest-server serve` on SQLite or
 * PostgreSQL), real worker processes (`sysattest-generator work`), real podman. Not a test file:
 * the tests next to it use it.
 */

export const PLATFORM = 'debian/bookworm/amd64';
const repo = fileURLToPath(new URL('../../../../', import.meta.url));
export const SERVER_BIN = path.join(repo, 'packages/server/bin/sysattest-server.js');
export const GENERATOR_BIN = path.join(repo, 'packages/generator/bin/sysattest-generator.js');

/**
 * One bookworm image for every service test run, built once and kept (mmdebstrap takes ~40 s):
 * `$SYSATTEST_TEST_IMAGE_HOME` (default /var/tmp/sysattest-test-images) holds its images.json,
 * under its own image namespace so it never touches an operator's images. A worker home made by
 * workerHome() starts with a copy of that state, so the worker finds the image and builds nothing.
 */
export const TEST_IMAGE_HOME = process.env.SYSATTEST_TEST_IMAGE_HOME ?? '/var/tmp/sysattest-test-images';
const TEST_IMAGE_NAMESPACE = 'localhost/sysattest-test-cache';

export async function sharedTestImage(): Promise<PlatformImage> {
  const fleet = new ImageFleet({
    home: TEST_IMAGE_HOME,
    podman: new Podman(),
    namespace: TEST_IMAGE_NAMESPACE,
  });
  for (;;) {
    const image = await fleet.getImage(PLATFORM);
    if (image !== undefined && (await fleet.podman.imageExists(image.imageId))) return image;
    try {
      return (await fleet.buildImage(PLATFORM, { force: image !== undefined })).image;
    } catch (e) {
      // Another test file is building it: wait for that build.
      if (!isGeneratorError(e, 'IMAGE_BUSY')) throw e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** A temporary directory removed by `cleanup`. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `sysattest-${prefix}-`));
}

/** A worker home that already knows the shared test image. */
export function workerHome(dir: string, name: string): string {
  const home = path.join(dir, name);
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  fs.copyFileSync(path.join(TEST_IMAGE_HOME, 'images.json'), path.join(home, 'images.json'));
  return home;
}

export interface TestKey {
  secretFile: string;
  publicFile: string;
  publicKey: string;
  fingerprint: string;
}

export async function testKey(dir: string): Promise<TestKey> {
  const k = await generateSigningKey({ name: 'service test' });
  const secretFile = path.join(dir, 'generator.key');
  const publicFile = path.join(dir, 'generator.pub');
  fs.writeFileSync(secretFile, k.armoredSecretKey, { mode: 0o600 });
  fs.writeFileSync(publicFile, k.armoredPublicKey);
  return { secretFile, publicFile, publicKey: k.armoredPublicKey, fingerprint: k.fingerprint };
}

/** `sysattest-server <args>` offline (token create, key add…); returns stdout, throws on failure. */
export function serverCli(args: string[]): string {
  const r = spawnSync(process.execPath, [SERVER_BIN, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sysattest-server ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

export function createToken(database: string, role: 'generator' | 'admin' | 'reader', dir: string): string {
  const secret = serverCli([
    'token',
    'create',
    '--role',
    role,
    '--name',
    `test ${role}`,
    '--database',
    database,
  ]);
  const file = path.join(dir, `${role}-${randomBytes(3).toString('hex')}.token`);
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

/** A fresh PostgreSQL database for one test (trust auth on 127.0.0.1), dropped by `drop`. */
export function postgresDatabase(): {
  url: string;
  name: string;
  drop: () => void;
  psql: (sql: string) => string;
} {
  const name = `sysattest_test_${randomBytes(5).toString('hex')}`;
  const base = ['-h', '127.0.0.1', '-p', '5432', '-U', 'postgres'];
  const r = spawnSync('createdb', [...base, name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`createdb ${name}: ${r.stderr}`);
  return {
    name,
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    drop: () => {
      spawnSync('dropdb', [...base, '--force', '--if-exists', name], { encoding: 'utf8' });
    },
    psql: (sql: string) => {
      const q = spawnSync('psql', [...base, '-d', name, '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
        encoding: 'utf8',
      });
      if (q.status !== 0) throw new Error(`psql: ${q.stderr}`);
      return q.stdout.trim();
    },
  };
}

/** Resolves when `check` returns a value other than undefined; polls every `everyMs`. */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** `sysattest-server serve` as a child process. */
export class ServerProcess {
  url = '';
  port = 0;
  output = '';
  private child: ChildProcess | undefined;

  constructor(
    private readonly database: string,
    private readonly trustKeyFile: string,
  ) {}

  /** Starts (on `port`, or any free port the first time) and waits until it listens. */
  async start(port = this.port): Promise<this> {
    const child = spawn(
      process.execPath,
      [
        SERVER_BIN,
        'serve',
        '--database',
        this.database,
        '--port',
        String(port),
        '--trust-key',
        this.trustKeyFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      this.output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    const url = await waitUntil(
      'the server to listen',
      () => {
        if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${this.output}`);
        return /listening on (http:\/\/\S+)/.exec(out)?.[1];
      },
      30_000,
      50,
    );
    this.url = url;
    this.port = Number(new URL(url).port);
    return this;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.kill(signal);
    await exited(child);
    this.child = undefined;
  }
}

export interface LogLine {
  time: string;
  level: string;
  event: string;
  msg: string;
  [field: string]: unknown;
}

/**
 * `sysattest-generator work --log-format json --log-level debug` as a child process, its log
 * parsed line by line (debug: tests wait for events such as `batch-start`).
 */
export class WorkerProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly child: ChildProcess;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(
      process.execPath,
      [GENERATOR_BIN, 'work', '--log-format', 'json', '--log-level', 'debug', ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      },
    );
    let partial = '';
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ time: '', level: 'raw', event: 'raw', msg: line });
        }
      }
    });
  }

  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  waitFor(
    event: string,
    timeoutMs: number,
    predicate: (l: LogLine) => boolean = () => true,
  ): Promise<LogLine> {
    return waitUntil(
      `worker event ${event}`,
      () => {
        const hit = this.lines.find((l) => l.event === event && predicate(l));
        if (hit === undefined && this.child.exitCode !== null) {
          throw new Error(
            `the worker exited (${this.child.exitCode}) before ${event}:\n${this.stderr.slice(-3000)}`,
          );
        }
        return hit;
      },
      timeoutMs,
    );
  }

  exited(): Promise<number | null> {
    return exited(this.child);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return exited(this.child);
  }
}

/** Common worker arguments for tests: the shared image, no refresh, quick polling. */
export function workerArgs(opts: {
  server: string;
  tokenFile: string;
  key: TestKey;
  extra?: string[];
}): string[] {
  return [
    '--server',
    opts.server,
    '--token-file',
    opts.tokenFile,
    '--key',
    opts.key.secretFile,
    '--platform',
    PLATFORM,
    '--no-refresh',
    '--poll-interval',
    '500ms',
    ...(opts.extra ?? []),
  ];
}

export interface LookupAnswer {
  items: {
    name: string;
    version: string;
    arch: string;
    status: string;
    newestVersion?: string;
    job?: { id: number; state: string };
    manifest?: { digest: string; bytes?: string; signature?: string };
  }[];
}

/** POST /v1/lookup, as a client does. */
export async function lookup(
  server: string,
  items: { name: string; version: string; arch: string }[],
): Promise<LookupAnswer> {
  const r = await fetch(`${server}/v1/lookup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ platform: PLATFORM, items }),
  });
  if (!r.ok) throw new Error(`lookup: ${r.status} ${await r.text()}`);
  return (await r.json()) as LookupAnswer;
}

/**
 * The newest version the server's catalog has of each package (asked as a client would, with a
 * version no archive has), so tests request exactly what the catalog offers today.
 */
export async function newestVersions(
  server: string,
  packages: { name: string; arch: string }[],
): Promise<{ name: string; version: string; arch: string }[]> {
  const r = await lookup(
    server,
    packages.map((p) => ({ ...p, version: '0~sysattest~probe' })),
  );
  return r.items.map((i) => {
    if (i.newestVersion === undefined) throw new Error(`${i.name}: not in the server's catalog`);
    return { name: i.name, version: i.newestVersion, arch: i.arch };
  });
}

/** Containers carrying a label (leftovers check). */
export function containersLabelled(label: string): string[] {
  const r = spawnSync('podman', ['ps', '-aq', '--filter', `label=${label}`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}
