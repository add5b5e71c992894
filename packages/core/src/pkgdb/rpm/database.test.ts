/**
 * The rpm reader against rpm itself: every package and every file of the real fixture databases
 * (a CBL-Mariner 2.0 sqlite rpmdb, a RHEL 8 Berkeley DB `Packages`) must come out as
 * `rpm --dbpath <copy> -qa --qf …` prints it. Then damaged databases: a clear
 * PackageDatabaseError, never a crash. Everything that opens an sqlite database runs with each
 * driver this runtime has (sqlite.ts): node:sqlite on Node ≥ 22.13, better-sqlite3 where it is
 * built for the runtime; on Node 20 the node:sqlite cases are skipped, saying why
 * (`scripts/test.sh` runs this file on the client package's Node 24 as well).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PackageDatabaseError } from '../../errors.js';
import { createRng, testSeed } from '../../testkit/versions.js';
import { dirWithFixture, fixturePath, requireRpm, rootWithFixture, rpmQuery } from '../../testkit/pkgdb.js';
import {
  openSqlite,
  readRpmDatabase,
  rpmPackageFromHeader,
  sqliteDrivers,
  type RpmDatabase,
  type RpmNote,
  type SqliteDriverName,
} from './index.js';

const AVAILABLE = await sqliteDrivers();
const DRIVERS: readonly SqliteDriverName[] = ['node:sqlite', 'better-sqlite3'];
/** node:test options that skip a case for a driver this runtime does not have, saying why. */
const withDriver = (driver: SqliteDriverName) => ({
  skip: !AVAILABLE.includes(driver) && `${driver} is not available on Node ${process.version}`,
});

const PKG_QF = '%{NAME}\\t%{EVR}\\t%{ARCH}\\t%{SOURCERPM}\\t%{DBINSTANCE}\\n';
const FILE_QF =
  '[%{=DBINSTANCE}\\t%{FILENAMES}\\t%{FILEDIGESTS}\\t%{FILEMODES}\\t%{FILEUSERNAME}\\t%{FILEGROUPNAME}' +
  '\\t%{FILELINKTOS}\\t%{FILEFLAGS}\\t%{FILESIZES}\\t%{FILESTATES}\\n]';

const FIXTURES = [
  {
    rel: 'rpm/cbl-mariner-2.0/rpmdb.sqlite',
    inRoot: '/var/lib/rpm/rpmdb.sqlite',
    format: 'sqlite',
    packages: 129,
  },
  { rel: 'rpm/libuuid-bdb/Packages', inRoot: '/var/lib/rpm/Packages', format: 'bdb', packages: 1 },
] as const;

const STATE_NUMBERS: Record<string, number> = {
  normal: 0,
  replaced: 1,
  notinstalled: 2,
  netshared: 3,
  wrongcolor: 4,
  missing: -1,
};

/** Our reading, printed the way the query formats above print rpm's. */
function ours(db: RpmDatabase): { packages: string[]; files: string[] } {
  const packages = db.packages.map((p) => {
    // `source` is derived from SOURCERPM: check that it says the same.
    if (p.sourceRpm !== undefined) {
      assert.equal(`${p.source.name}-${p.source.version.replace(/^[0-9]+:/, '')}.src.rpm`, p.sourceRpm);
    }
    return [p.name, p.version, p.architecture, p.sourceRpm ?? '(none)', p.headerNumber].join('\t');
  });
  const files = db.packages.flatMap((p) =>
    p.files.map((f) =>
      [
        p.headerNumber,
        f.path,
        f.digest?.hex ?? '',
        f.mode ?? '',
        f.owner ?? '',
        f.group ?? '',
        f.linkTarget ?? '',
        f.flags,
        f.size ?? '',
        f.state === undefined ? '' : STATE_NUMBERS[f.state],
      ].join('\t'),
    ),
  );
  return { packages, files };
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

/** Reads `root` and checks every package and file against rpm run on `rpmDir` (a copy). */
async function agreesWithRpm(
  t: { diagnostic(m: string): void },
  root: string,
  rpmDir: string,
  format: string,
  count: number,
  sqliteDriver?: SqliteDriverName,
): Promise<void> {
  const started = performance.now();
  const db = await readRpmDatabase(root, sqliteDriver === undefined ? {} : { sqliteDriver });
  if (sqliteDriver !== undefined) t.diagnostic(`read with ${sqliteDriver}`);
  const ms = (performance.now() - started).toFixed(0);
  assert.equal(db.format, format);
  assert.equal(db.packages.length, count);
  assert.deepEqual(db.notes, []);
  const mine = ours(db);
  // rpm lists a Berkeley DB in hash order, an sqlite one by header number: compare by header
  // number (a stable sort keeps each package's files in the header's order).
  const byHeader = (field: number) => (a: string, b: string) =>
    Number(a.split('\t')[field]) - Number(b.split('\t')[field]);
  const theirs = {
    packages: lines(rpmQuery(rpmDir, PKG_QF))
      .filter((l) => !l.startsWith('gpg-pubkey\t'))
      .sort(byHeader(4)),
    files: lines(rpmQuery(rpmDir, FILE_QF)).sort(byHeader(0)),
  };
  const fileCount = db.packages.reduce((n, p) => n + p.files.length, 0);
  const digests = db.packages.reduce((n, p) => n + p.files.filter((f) => f.digest).length, 0);
  t.diagnostic(
    `${db.packages.length} packages, ${fileCount} files (${digests} with digests) read in ${ms} ms`,
  );
  assert.deepEqual(mine.packages, theirs.packages);
  assert.equal(mine.files.length, theirs.files.length);
  for (let i = 0; i < mine.files.length; i++) assert.equal(mine.files[i], theirs.files[i]);
  // The digest algorithm as rpm names it.
  const algos = lines(rpmQuery(rpmDir, '%{DBINSTANCE}\\t%{FILEDIGESTALGO}\\n'))
    .sort(byHeader(0))
    .map((l) => l.split('\t')[1] as string);
  const expected = algos.map((a) => ({ '1': 'md5', '8': 'sha256', '(none)': 'md5' })[a] ?? a);
  db.packages.forEach((p, i) => {
    for (const f of p.files)
      if (f.digest) assert.equal(f.digest.algorithm, expected[i], `${p.name} ${f.path}`);
  });
  // Config files are flagged.
  for (const p of db.packages)
    for (const f of p.files) assert.equal(f.conffile === true, (f.flags & 1) === 1);
  // The root is left as it was: nothing written beside the database.
  assert.deepEqual(fs.readdirSync(join(root, 'var/lib/rpm')), [
    format === 'bdb' ? 'Packages' : 'rpmdb.sqlite',
  ]);
}

before(() => requireRpm());

describe('rpm database reader agrees with rpm on the real fixtures', () => {
  for (const fx of FIXTURES) {
    for (const driver of fx.format === 'sqlite' ? DRIVERS : [undefined]) {
      const how = driver === undefined ? fx.format : `${fx.format}, ${driver}`;
      it(
        `${fx.rel} (${how}): every package and every file`,
        driver === undefined ? {} : withDriver(driver),
        async (t) => {
          const { root, cleanup } = rootWithFixture(fx.rel, fx.inRoot);
          const copy = dirWithFixture(fx.rel);
          try {
            await agreesWithRpm(t, root, copy.dir, fx.format, fx.packages, driver);
          } finally {
            cleanup();
            copy.cleanup();
          }
        },
      );
    }
  }

  // A bigger Berkeley DB than the one-package fixture: the 129 real headers of the sqlite
  // fixture loaded by Berkeley DB 5.3's own db_load into hash databases of several page sizes
  // (long overflow chains at 512 bytes, few at 64 KiB), read by us and by rpm's bdb_ro backend.
  for (const pageSize of [512, 4096, 65536]) {
    it(`a 129-package Berkeley DB Packages written by db5.3_load (${pageSize}-byte pages)`, async (t) => {
      const dir = fs.mkdtempSync(join(tmpdir(), 'sysattest-bdb-'));
      try {
        const fixtureCopy = dirWithFixture(FIXTURES[0].rel);
        const src = await openSqlite(fixtureCopy.file);
        const hex = (n: number): string => {
          const b = Buffer.alloc(4);
          b.writeUInt32LE(n);
          return b.toString('hex');
        };
        let dump = `VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=${pageSize}\nHEADER=END\n`;
        dump += ` ${hex(0)}\n ${hex(1000)}\n`; // rpm's "last header number" record
        for (const r of src.iterate('SELECT hnum, blob FROM Packages')) {
          dump += ` ${hex(r.hnum as number)}\n ${(r.blob as Buffer).toString('hex')}\n`;
        }
        src.close();
        fixtureCopy.cleanup();
        dump += 'DATA=END\n';
        fs.writeFileSync(join(dir, 'dump.txt'), dump);
        fs.mkdirSync(join(dir, 'root/var/lib/rpm'), { recursive: true });
        fs.mkdirSync(join(dir, 'copy'));
        const load = spawnSync('db5.3_load', ['-f', join(dir, 'dump.txt'), join(dir, 'copy/Packages')], {
          encoding: 'utf8',
        });
        if (load.error)
          throw new Error(`this test needs db5.3_load (apt-get install db5.3-util): ${load.error.message}`);
        assert.equal(load.status, 0, load.stderr);
        fs.copyFileSync(join(dir, 'copy/Packages'), join(dir, 'root/var/lib/rpm/Packages'));
        await agreesWithRpm(t, join(dir, 'root'), join(dir, 'copy'), 'bdb', 129);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  for (const driver of DRIVERS)
    it(
      `sees a committed transaction still in the write-ahead log, as rpm does (${driver})`,
      withDriver(driver),
      async () => {
        const { file, cleanup } = dirWithFixture(FIXTURES[0].rel);
        const root = fs.mkdtempSync(join(tmpdir(), 'sysattest-rpmwal-'));
        try {
          const db = await openSqlite(file, driver);
          db.exec('PRAGMA journal_mode = WAL');
          db.exec('PRAGMA wal_autocheckpoint = 0');
          db.exec('PRAGMA foreign_keys = OFF');
          db.run('DELETE FROM Packages WHERE hnum = 3'); // glibc
          // Copy while the connection is open: the deletion is only in the -wal file.
          fs.mkdirSync(join(root, 'var/lib/rpm'), { recursive: true });
          fs.copyFileSync(file, join(root, 'var/lib/rpm/rpmdb.sqlite'));
          fs.copyFileSync(`${file}-wal`, join(root, 'var/lib/rpm/rpmdb.sqlite-wal'));
          db.close();
          assert.ok(fs.statSync(join(root, 'var/lib/rpm/rpmdb.sqlite-wal')).size > 0);
          const read = await readRpmDatabase(root, { sqliteDriver: driver });
          assert.equal(read.packages.length, 128);
          assert.equal(read.findAll('glibc').length, 0);
          // rpm, on its own copy of both files (it may fold the log into the main file).
          const rpmCopy = join(root, 'rpm-copy');
          fs.mkdirSync(rpmCopy);
          for (const f of ['rpmdb.sqlite', 'rpmdb.sqlite-wal'])
            fs.copyFileSync(join(root, 'var/lib/rpm', f), join(rpmCopy, f));
          assert.equal(lines(rpmQuery(rpmCopy, '%{NAME}\\n')).length, 128);
          // The main file alone still holds glibc: the log is what made the difference.
          fs.rmSync(join(root, 'var/lib/rpm/rpmdb.sqlite-wal'));
          assert.equal((await readRpmDatabase(root, { sqliteDriver: driver })).findAll('glibc').length, 1);
        } finally {
          cleanup();
          fs.rmSync(root, { recursive: true, force: true });
        }
      },
    );

  it('reads the Fedora layout (/var/lib/rpm a symlink into /usr/lib/sysimage/rpm) and knows the arch', async () => {
    const { root, cleanup } = rootWithFixture(FIXTURES[0].rel, '/usr/lib/sysimage/rpm/rpmdb.sqlite');
    try {
      fs.mkdirSync(join(root, 'var/lib'), { recursive: true });
      fs.symlinkSync('../../usr/lib/sysimage/rpm', join(root, 'var/lib/rpm'));
      const db = await readRpmDatabase(root);
      assert.equal(db.packages.length, 129);
      assert.equal(db.nativeArch(), 'x86_64');
      const glibc = db.findAll('glibc');
      assert.equal(glibc.length, 1);
      assert.equal(glibc[0]?.version, '2.34-2.cm2');
      assert.deepEqual(glibc[0]?.source, { name: 'glibc', version: '2.34-2.cm2' });
      assert.ok(db.owners('/usr/bin').length > 1, 'a directory has several owners');
      const sh = db.packages.flatMap((p) => p.files).find((f) => f.path === '/bin');
      assert.equal(sh?.linkTarget, 'usr/bin');
      assert.equal((sh?.mode ?? 0) & 0o170000, 0o120000, '/bin is a symlink');
    } finally {
      cleanup();
    }
  });

  it('an absolute symlink to the database resolves inside the root, never on the host', async () => {
    const { root, cleanup } = rootWithFixture(FIXTURES[1].rel, '/srv/db/Packages');
    try {
      fs.mkdirSync(join(root, 'var/lib'), { recursive: true });
      fs.symlinkSync('/srv/db', join(root, 'var/lib/rpm'));
      const db = await readRpmDatabase(root);
      assert.equal(db.packages[0]?.name, 'libuuid');
    } finally {
      cleanup();
    }
  });
});

describe('rpm database reader refuses damaged databases clearly', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  function rootWith(inRoot: string, bytes: Buffer): string {
    const root = fs.mkdtempSync(join(tmpdir(), 'sysattest-rpmbad-'));
    dirs.push(root);
    fs.mkdirSync(join(root, inRoot, '..'), { recursive: true });
    fs.writeFileSync(join(root, inRoot), bytes);
    return root;
  }

  async function refused(
    root: string,
    code: string,
    message: RegExp,
    sqliteDriver?: SqliteDriverName,
  ): Promise<void> {
    await assert.rejects(
      readRpmDatabase(root, sqliteDriver === undefined ? {} : { sqliteDriver }),
      (e: unknown) => {
        assert.ok(e instanceof PackageDatabaseError, `expected PackageDatabaseError, got ${String(e)}`);
        assert.equal(e.code, code);
        assert.match(e.message, message);
        return true;
      },
    );
  }

  it('no database at all, and the ndb format, are DATABASE_NOT_FOUND', async () => {
    const empty = fs.mkdtempSync(join(tmpdir(), 'sysattest-rpmbad-'));
    dirs.push(empty);
    await refused(empty, 'DATABASE_NOT_FOUND', /no rpm database \(rpmdb\.sqlite or Packages\)/);
    const ndb = rootWith('/usr/lib/sysimage/rpm/Packages.db', Buffer.from('RpmP'));
    await refused(ndb, 'DATABASE_NOT_FOUND', /ndb format \(Packages\.db\), which is not supported/);
  });

  for (const driver of DRIVERS)
    it(
      `garbage, an empty file, a truncated sqlite file, and an sqlite file of another program (${driver})`,
      withDriver(driver),
      async () => {
        const real = fs.readFileSync(fixturePath(FIXTURES[0].rel));
        await refused(
          rootWith('/var/lib/rpm/rpmdb.sqlite', Buffer.from('hello')),
          'DATABASE_CORRUPT',
          /not an sqlite database.*rpmdb\.sqlite/,
          driver,
        );
        await refused(
          rootWith('/var/lib/rpm/rpmdb.sqlite', Buffer.alloc(0)),
          'DATABASE_CORRUPT',
          /not an sqlite database/,
          driver,
        );
        await refused(
          rootWith('/var/lib/rpm/rpmdb.sqlite', real.subarray(0, 8192)),
          'DATABASE_CORRUPT',
          /sqlite database cannot be read|no Packages table/,
          driver,
        );
        const other = fs.mkdtempSync(join(tmpdir(), 'sysattest-rpmbad-'));
        dirs.push(other);
        fs.writeFileSync(join(other, 'x.sqlite'), '');
        const db = await openSqlite(join(other, 'x.sqlite'), driver);
        db.exec('CREATE TABLE t (x)');
        db.close();
        await refused(
          rootWith('/var/lib/rpm/rpmdb.sqlite', fs.readFileSync(join(other, 'x.sqlite'))),
          'DATABASE_CORRUPT',
          /no Packages table/,
          driver,
        );
        await refused(
          rootWith('/var/lib/rpm/Packages', Buffer.alloc(4096, 7)),
          'DATABASE_CORRUPT',
          /not a Berkeley DB hash database/,
        );
        const checksummed = Buffer.from(fs.readFileSync(fixturePath(FIXTURES[1].rel)));
        checksummed[26] = 1;
        await refused(rootWith('/var/lib/rpm/Packages', checksummed), 'DATABASE_CORRUPT', /page checksums/);
        const encrypted = Buffer.from(fs.readFileSync(fixturePath(FIXTURES[1].rel)));
        encrypted[24] = 1;
        await refused(rootWith('/var/lib/rpm/Packages', encrypted), 'DATABASE_CORRUPT', /encrypted/);
        await refused(rootWith('/var/lib/rpm/Packages', Buffer.from('x')), 'DATABASE_CORRUPT', /too small/);
      },
    );

  it('a damaged header blob names its header number', async () => {
    const { file, cleanup } = dirWithFixture(FIXTURES[0].rel);
    try {
      const db = await openSqlite(file);
      const row = db.get('SELECT hnum, blob FROM Packages WHERE hnum = 3') as { hnum: number; blob: Buffer };
      db.run('UPDATE Packages SET blob = ? WHERE hnum = 3', row.blob.subarray(0, row.blob.length - 100));
      db.close();
      const bytes = fs.readFileSync(file);
      const wal = fs.existsSync(`${file}-wal`) ? fs.readFileSync(`${file}-wal`) : undefined;
      const root = rootWith('/var/lib/rpm/rpmdb.sqlite', bytes);
      if (wal) fs.writeFileSync(join(root, 'var/lib/rpm/rpmdb.sqlite-wal'), wal);
      await refused(
        root,
        'DATABASE_CORRUPT',
        /header 3 is damaged: header blob is \d+ bytes, its index says/,
      );
    } finally {
      cleanup();
    }
  });

  it('size caps: a database or a header above the limit is DATABASE_TOO_LARGE', async () => {
    const { root, cleanup } = rootWithFixture(FIXTURES[1].rel, '/var/lib/rpm/Packages');
    try {
      await assert.rejects(readRpmDatabase(root, { limits: { database: 1000 } }), {
        code: 'DATABASE_TOO_LARGE',
      });
      await assert.rejects(readRpmDatabase(root, { limits: { header: 1000 } }), { code: 'DATABASE_CORRUPT' });
      await assert.rejects(readRpmDatabase(root, { limits: { filesPerPackage: 6 } }), {
        code: 'DATABASE_TOO_LARGE',
        message: /header \d+ lists 7 files/,
      });
      assert.equal(
        (await readRpmDatabase(root, { limits: { filesPerPackage: 7, files: 7 } })).packages.length,
        1,
      );
      await assert.rejects(readRpmDatabase(root, { limits: { files: 6 } }), {
        code: 'DATABASE_TOO_LARGE',
        message: /more than 6 files in all/,
      });
    } finally {
      cleanup();
    }
  });

  it('damaged Berkeley DB pages: every single-byte change either reads or is DATABASE_CORRUPT', async () => {
    const real = fs.readFileSync(fixturePath(FIXTURES[1].rel));
    const rng = createRng(testSeed());
    const root = rootWith('/var/lib/rpm/Packages', real);
    const file = join(root, 'var/lib/rpm/Packages');
    let refusedCount = 0;
    for (let k = 0; k < 300; k++) {
      const bytes = Buffer.from(real);
      // The page headers and the hash page (where the pointers are) and the first header bytes.
      const at = rng.chance(0.5) ? rng.int(4096 * 3) : rng.int(bytes.length);
      bytes[at] = rng.int(256);
      fs.writeFileSync(file, bytes);
      try {
        await readRpmDatabase(root);
      } catch (e) {
        assert.ok(e instanceof PackageDatabaseError, `byte ${at}: ${String(e)}`);
        refusedCount++;
      }
    }
    assert.ok(refusedCount > 0, 'no change was noticed at all');
  });

  it('damaged header blobs: random changes either read or throw a HeaderError/RangeError, never anything else', async () => {
    const { file, cleanup } = dirWithFixture(FIXTURES[0].rel);
    try {
      const db = await openSqlite(file);
      const blobs = [...db.iterate('SELECT blob FROM Packages')].map((r) => r.blob as Buffer);
      db.close();
      const rng = createRng(testSeed());
      let thrown = 0;
      for (let k = 0; k < 2000; k++) {
        const blob = Buffer.from(rng.pick(blobs));
        for (let n = 1 + rng.int(4); n > 0; n--) {
          // Mostly the index (where offsets and counts are), sometimes the data.
          const at = rng.chance(0.7) ? rng.int(Math.min(blob.length, 8 + 16 * 40)) : rng.int(blob.length);
          blob[at] = rng.int(256);
        }
        const notes: RpmNote[] = [];
        try {
          const pkg = rpmPackageFromHeader(1, blob, notes, 'x');
          assert.equal(typeof pkg.name, 'string');
        } catch (e) {
          assert.ok(
            (e as Error).constructor.name === 'HeaderError' || e instanceof RangeError,
            `unexpected ${String(e)}`,
          );
          thrown++;
        }
      }
      assert.ok(thrown > 0);
    } finally {
      cleanup();
    }
  });
});
