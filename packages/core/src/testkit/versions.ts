/**
 * Test support for the version-scheme tests (not exported from the package): a seeded PRNG, a
 * corpus of real Debian versions read from this machine's apt lists and dpkg database, and fast
 * batched calls to `dpkg --compare-versions`, the oracle the dpkg tests compare against.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

// ---------------------------------------------------------------------------------------------
// Seeded PRNG

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

/** The seed for every seeded test; override with SYSATTEST_TEST_SEED to explore other cases. */
export function testSeed(): number {
  const env = process.env['SYSATTEST_TEST_SEED'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isSafeInteger(n)) throw new Error(`SYSATTEST_TEST_SEED must be an integer, got ${env}`);
    return n >>> 0;
  }
  return 0x5eed2024;
}

/** sfc32, seeded through splitmix32: small, fast, good enough for picking test cases. */
export function createRng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  const rng: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(next() * items.length)] as T;
    },
    chance: (p) => next() < p,
  };
  return rng;
}

/**
 * A random, *valid* dpkg version built from a small alphabet, so that two of them are often equal
 * or nearly equal: leading zeros, `~` runs, long digit runs, hyphens inside the upstream part,
 * upper and lower case, optional epoch and revision.
 */
export function randomDpkgVersion(rng: Rng): string {
  const digits = (): string => {
    if (rng.chance(0.08)) {
      // Longer than any integer type: 16 to 40 digits.
      let s = String(1 + rng.int(9));
      const n = 15 + rng.int(25);
      for (let i = 0; i < n; i++) s += String(rng.int(10));
      return s;
    }
    return rng.pick(['0', '1', '2', '9', '10', '01', '00', '001', '100']);
  };
  const letters = (): string => rng.pick(['a', 'b', 'A', 'Z', 'rc', 'z', 'dfsg']);
  const epoch = rng.chance(0.2) ? `${rng.pick(['0', '1', '2', '00', '01', '10'])}:` : '';
  let upstream = digits();
  const segments = rng.int(5);
  for (let i = 0; i < segments; i++) {
    const r = rng.next();
    if (r < 0.35) upstream += rng.pick(['.', '+', '~', '~~']) + digits();
    else if (r < 0.55) upstream += letters();
    else if (r < 0.75) upstream += rng.pick(['~', '.', '+', '~~']);
    else if (r < 0.85)
      upstream += `-${digits()}`; // a hyphen inside upstream needs a revision
    else if (r < 0.9 && epoch !== '') upstream += `:${digits()}`;
    else upstream += digits();
  }
  let revision = '';
  if (rng.chance(0.5) || upstream.includes('-')) {
    const parts = 1 + rng.int(3);
    for (let i = 0; i < parts; i++) {
      const r = rng.next();
      if (r < 0.45) revision += digits();
      else if (r < 0.65) revision += letters();
      else revision += rng.pick(['~', '.', '+', '~~', '+b']);
    }
    revision = `-${revision}`;
  }
  return `${epoch}${upstream}${revision}`;
}

// ---------------------------------------------------------------------------------------------
// Version corpus from this machine

export interface VersionCorpus {
  /** Distinct versions, in the order first seen. */
  versions: string[];
  /** Distinct versions of each binary package. */
  byPackage: Map<string, string[]>;
  /** Every file read and how many Version fields it had. */
  sources: { file: string; versions: number }[];
}

const APT_HELPER = '/usr/lib/apt/apt-helper';
const PACKAGES_FILE = /_Packages(\.(gz|xz|lz4|zst|bz2|lzma))?$/;

/**
 * The `Package:` and `Version:` lines of an index, through grep (reading 50 MB of Packages text
 * line by line in Node takes seconds; grep takes milliseconds). Compressed lists are opened with
 * `apt-helper cat-file`, which decompresses whatever apt itself can read.
 */
function openIndex(file: string): Readable | undefined {
  const grep = `grep -E '^(Package|Version):'`;
  if (!/\.(gz|xz|lz4|zst|bz2|lzma)$/.test(file)) {
    return spawn('sh', ['-c', `${grep} "$0"`, file], { stdio: ['ignore', 'pipe', 'ignore'] }).stdout;
  }
  if (!existsSync(APT_HELPER)) return undefined;
  return spawn('sh', ['-c', `"$0" cat-file "$1" | ${grep}`, APT_HELPER, file], {
    stdio: ['ignore', 'pipe', 'ignore'],
  }).stdout;
}

async function readAll(stream: Readable): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) text += chunk as string;
  return text;
}

/**
 * Every `Version` field of the apt lists (`/var/lib/apt/lists/*_Packages*`, compressed or not) and
 * of `/var/lib/dpkg/status` and `/var/lib/dpkg/available`, when they exist. The environment
 * variables SYSATTEST_TEST_APT_LISTS and SYSATTEST_TEST_DPKG_DIR point elsewhere (to check that the
 * tests fail on a machine without lists).
 */
export async function loadDpkgVersionCorpus(
  listsDir = process.env['SYSATTEST_TEST_APT_LISTS'] || '/var/lib/apt/lists',
  dpkgDir = process.env['SYSATTEST_TEST_DPKG_DIR'] || '/var/lib/dpkg',
): Promise<VersionCorpus> {
  const files: string[] = [];
  if (existsSync(listsDir)) {
    for (const name of readdirSync(listsDir).sort()) {
      if (PACKAGES_FILE.test(name)) files.push(join(listsDir, name));
    }
  }
  for (const name of ['status', 'available']) {
    const f = join(dpkgDir, name);
    if (existsSync(f)) files.push(f);
  }
  const seen = new Set<string>();
  const versions: string[] = [];
  const byPackage = new Map<string, Set<string>>();
  const add = (pkg: string, version: string): void => {
    if (!seen.has(version)) {
      seen.add(version);
      versions.push(version);
    }
    let set = byPackage.get(pkg);
    if (!set) byPackage.set(pkg, (set = new Set()));
    set.add(version);
  };
  const sources: VersionCorpus['sources'] = [];
  const texts = await Promise.all(
    files.map((file) => {
      const stream = openIndex(file);
      return stream ? readAll(stream) : undefined;
    }),
  );
  files.forEach((file, i) => {
    const text = texts[i];
    if (text === undefined) return;
    let pkg = '';
    let count = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('Package:')) pkg = line.slice(8).trim();
      else if (line.startsWith('Version:') && pkg !== '') {
        add(pkg, line.slice(8).trim());
        count++;
      }
    }
    sources.push({ file, versions: count });
  });
  return {
    versions,
    byPackage: new Map([...byPackage].map(([k, v]) => [k, [...v]])),
    sources,
  };
}

// ---------------------------------------------------------------------------------------------
// dpkg as the oracle

export type DpkgRelation = 'lt' | 'eq' | 'gt';

const DPKG_ENV = { ...process.env, LC_ALL: 'C' };

/** Throws a clear error unless `dpkg` can be run. */
export function requireDpkg(): void {
  const r = spawnSync('dpkg', ['--version'], { encoding: 'utf8', env: DPKG_ENV });
  if (r.error || r.status !== 0) {
    throw new Error(
      'the dpkg version tests need the dpkg program as their oracle (apt-get install dpkg): ' +
        (r.error?.message ?? `dpkg --version exited ${r.status}`),
    );
  }
}

/** One `dpkg --compare-versions a rel b`, with any arguments (no shell): exit status and stderr. */
export function runDpkgCompare(a: string, rel: string, b: string): { status: number; stderr: string } {
  const r = spawnSync('dpkg', ['--compare-versions', a, rel, b], { encoding: 'utf8', env: DPKG_ENV });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stderr: r.stderr };
}

/**
 * What dpkg's parseversion() thinks of `v`: `error` (`--compare-versions` exits 2), `warning`
 * (it warns on stderr, then compares anyway) or `ok`.
 */
export function dpkgParseOutcome(v: string): 'error' | 'warning' | 'ok' {
  const { status, stderr } = runDpkgCompare(v, 'eq', v);
  if (status === 2) return 'error';
  if (status !== 0)
    throw new Error(`dpkg --compare-versions ${JSON.stringify(v)} eq itself exited ${status}`);
  return /warning/.test(stderr) ? 'warning' : 'ok';
}

/** dpkg's own three-way answer, with one or two runs. */
export function dpkgSign(a: string, b: string): -1 | 0 | 1 {
  const lt = runDpkgCompare(a, 'lt', b).status;
  if (lt === 0) return -1;
  const eq = runDpkgCompare(a, 'eq', b).status;
  if (lt !== 1 || (eq !== 0 && eq !== 1)) {
    throw new Error(`dpkg refused to compare ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
  }
  return eq === 0 ? 0 : 1;
}

/** Versions that can go between single quotes in a shell script and cannot look like an option. */
const SHELL_SAFE = /^[0-9A-Za-z.+~:][0-9A-Za-z.+~:-]*$/;

export function isShellSafeVersion(v: string): boolean {
  return SHELL_SAFE.test(v);
}

export interface DpkgQuery {
  a: string;
  rel: DpkgRelation;
  b: string;
}

function runScript(lines: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], env: DPKG_ENV });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const codes = out.split('\n').filter((l) => l !== '');
      if (code !== 0 || codes.length !== lines.length) {
        reject(
          new Error(`dpkg batch failed (sh exit ${code}, ${codes.length}/${lines.length} answers): ${err}`),
        );
        return;
      }
      resolve(codes.map(Number));
    });
    child.stdin.end(lines.join('\n') + '\n');
  });
}

/**
 * Runs `dpkg --compare-versions a rel b` for every query and returns each exit status (0: the
 * relation holds, 1: it does not, 2: dpkg refused a version). Batched: a few `sh` processes, each
 * running one script of many dpkg calls, in parallel — about 1 ms per query instead of the ~3 ms
 * of spawning dpkg from Node. Only shell-safe versions are accepted (see `isShellSafeVersion`).
 */
export async function dpkgCompareBatch(queries: readonly DpkgQuery[]): Promise<number[]> {
  const lines = queries.map(({ a, rel, b }) => {
    if (!isShellSafeVersion(a) || !isShellSafeVersion(b)) {
      throw new Error(`not shell-safe, refusing to script: ${JSON.stringify(a)} / ${JSON.stringify(b)}`);
    }
    return `dpkg --compare-versions '${a}' ${rel} '${b}' 2>/dev/null; echo $?`;
  });
  const workers = Math.max(1, Math.min(4, availableParallelism()));
  const chunk = Math.max(1, Math.ceil(lines.length / workers));
  const jobs: Promise<number[]>[] = [];
  for (let i = 0; i < lines.length; i += chunk) jobs.push(runScript(lines.slice(i, i + chunk)));
  return (await Promise.all(jobs)).flat();
}

export function relationOf(sign: number): DpkgRelation {
  return sign < 0 ? 'lt' : sign > 0 ? 'gt' : 'eq';
}
