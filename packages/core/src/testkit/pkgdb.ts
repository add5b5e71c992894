/**
 * Test support (not exported from the package): the real package databases in the
 * repository's test-fixtures folder (see its README.md), copied to a temporary directory before use because rpm
 * writes `-shm`/`-wal` files beside an sqlite database even to read
 * it; and `rpm` itself as the oracle the rpm tests compare against.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The fixtures folder: SYSATTEST_FIXTURES, else the repository's `test-fixtures/`
 * (this file is `packages/core/{src,dist}/testkit/pkgdb.*`).
 */
export function fixturesDir(): string {
  const env = process.env['SYSATTEST_FIXTURES'];
  if (env !== undefined && env !== '') return env;
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
  return resolve(repo, 'test-fixtures');
}

/** Host path of a fixture file; throws a clear error when it is missing. */
export function fixturePath(rel: string): string {
  const p = join(fixturesDir(), rel);
  if (!existsSync(p)) {
    throw new Error(`fixture ${rel} is missing (looked in ${fixturesDir()}; set SYSATTEST_FIXTURES)`);
  }
  return p;
}

/**
 * A fresh temporary root with the fixture file `rel` copied to `inRoot` (a path inside the root,
 * e.g. `/var/lib/rpm/rpmdb.sqlite`). Returns the root and a cleanup function.
 */
export function rootWithFixture(rel: string, inRoot: string): { root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'sysattest-fixture-'));
  const dest = join(root, inRoot);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(fixturePath(rel), dest);
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** A temporary directory holding a copy of the fixture file `rel` under its own name. */
export function dirWithFixture(rel: string): { dir: string; file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sysattest-fixture-'));
  const file = join(dir, basename(rel));
  copyFileSync(fixturePath(rel), file);
  return { dir, file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Throws a clear error unless the `rpm` program can be run (the oracle of the rpm tests). */
export function requireRpm(): void {
  const r = spawnSync('rpm', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      'the rpm tests need the rpm program as their oracle (apt-get install rpm): ' +
        (r.error?.message ?? `rpm --version exited ${r.status}`),
    );
  }
}

/**
 * `rpm --dbpath <dbDir> -qa --qf <format>` (plus `extra` arguments), stdout. The backend is
 * chosen from what the directory holds (`Packages`: bdb_ro, else sqlite).
 */
export function rpmQuery(dbDir: string, format: string, extra: string[] = []): string {
  const backend = existsSync(join(dbDir, 'Packages')) ? 'bdb_ro' : 'sqlite';
  const r = spawnSync(
    'rpm',
    ['--dbpath', dbDir, '--define', `_db_backend ${backend}`, '-qa', '--qf', format, ...extra],
    { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } },
  );
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`rpm -qa failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
