/**
 * apk's protected paths: the rule format, apk's directory walk (later rules win, rules carried
 * down component by component, a file matched by name in its directory), and the `conffile`
 * flags readApkDatabase gives a real Alpine database with apk's built-in rules and with a root's
 * own `etc/apk/protected_paths.d/*.list`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PackageDatabaseError } from '../../errors.js';
import { rootWithFixture } from '../../testkit/pkgdb.js';
import {
  ApkProtectedPaths,
  fnmatchComponent,
  parseApkProtectedPaths,
  readApkDatabase,
  readApkProtectedPaths,
} from './index.js';
import { RootDir } from '../../fs/in-root.js';

const withLists = (lists: string): ApkProtectedPaths =>
  new ApkProtectedPaths([...ApkProtectedPaths.defaults().rules, ...parseApkProtectedPaths(lists)]);

describe('apk protected paths', () => {
  it('parses modes, comments, empty lines, no mode character, and slashes around the glob', () => {
    assert.deepEqual(
      parseApkProtectedPaths(
        '# c\n\n+etc/\n-/etc/ssl/certs/ca-cert-*.pem\n@etc/init.d\n!etc/apk\nusr/local/etc\r\n',
      ),
      [
        { mode: 'changed', components: ['etc'] },
        { mode: 'none', components: ['etc', 'ssl', 'certs', 'ca-cert-*.pem'] },
        { mode: 'symlinks-only', components: ['etc', 'init.d'] },
        { mode: 'all', components: ['etc', 'apk'] },
        { mode: 'changed', components: ['usr', 'local', 'etc'] },
      ],
    );
  });

  it("apk's built-in rules: etc/ is configuration, but not etc/apk/ nor what etc/init.d/ holds", () => {
    const d = ApkProtectedPaths.defaults();
    const cases: [string, string, boolean][] = [
      ['/etc/passwd', 'changed', true],
      ['/etc/ssl/openssl.cnf', 'changed', true],
      ['/etc/conf.d/sshd', 'changed', true],
      ['/etc/apk/keys/alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub', 'all', false],
      ['/etc/apk/protected_paths.d/ca-certificates.list', 'all', false],
      ['/etc/init.d/sshd', 'symlinks-only', false],
      ['/etc/init.d/x/y', 'symlinks-only', false],
      ['/usr/bin/ssh', 'none', false],
      ['/etcetera/x', 'none', false],
      ['/usr/etc/x', 'none', false],
      ['/etc', 'none', false],
    ];
    for (const [p, mode, config] of cases) {
      assert.equal(d.modeOf(p), mode, p);
      assert.equal(d.isConfig(p), config, p);
    }
    assert.equal(d.modeOf('/etc', { directory: true }), 'changed');
    assert.equal(d.modeOf('/etc/apk', { directory: true }), 'all');
  });

  it("a root's rules: a file glob unprotects some files of a protected directory, later rules win", () => {
    const p = withLists(
      '-etc/ssl/certs/ca-cert-*.pem\n-etc/ssl/certs/[0-9a-f]*.[r0-9]*\n+opt/app/conf/*.ini\n-etc/motd\n+etc/motd\n-etc/issue\n',
    );
    const cases: [string, boolean][] = [
      ['/etc/ssl/certs/ca-cert-Foo_Root.pem', false],
      ['/etc/ssl/certs/5ad8a5d6.0', false],
      ['/etc/ssl/certs/ca-certificates.crt', true],
      ['/opt/app/conf/app.ini', true],
      ['/opt/app/conf/app.so', false],
      ['/opt/app/conf/sub/app.ini', false],
      ['/etc/motd', true],
      ['/etc/issue', false],
    ];
    for (const [path, config] of cases) assert.equal(p.isConfig(path), config, path);
  });

  it('a directory rule applies to everything below it; `-` below a protected one turns it off', () => {
    const p = withLists('-etc/ssl\n+etc/ssl/private\n');
    assert.equal(p.isConfig('/etc/ssl/openssl.cnf'), false);
    assert.equal(p.isConfig('/etc/ssl/private/key.pem'), true);
    assert.equal(p.isConfig('/etc/ssl/private/deep/key.pem'), true);
  });

  it('fnmatch globs within one component', () => {
    const t: [string, string, boolean][] = [
      ['*.pem', 'a.pem', true],
      ['*.pem', '.pem', true],
      ['*.pem', 'a.pem.bak', false],
      ['?.conf', 'a.conf', true],
      ['?.conf', 'ab.conf', false],
      ['[0-9a-f]*.[r0-9]*', '5ad8a5d6.0', true],
      ['[0-9a-f]*.[r0-9]*', 'ca.r1', true],
      ['[0-9a-f]*.[r0-9]*', 'zz.0', false],
      ['[!x]y', 'ay', true],
      ['[!x]y', 'xy', false],
      ['[]]', ']', true],
      ['\\*', '*', true],
      ['\\*', 'a', false],
      ['a[b', 'a[b', true],
      ['a.b', 'axb', false],
      ['(x)+', '(x)+', true],
    ];
    for (const [glob, name, expected] of t)
      assert.equal(fnmatchComponent(glob, name), expected, `${glob} ${name}`);
  });

  describe('readApkDatabase: conffile from the protected paths', () => {
    const flagged = (db: Awaited<ReturnType<typeof readApkDatabase>>): string[] =>
      db.packages
        .flatMap((p) => p.files)
        .filter((f) => f.conffile === true)
        .map((f) => f.path)
        .sort();

    it("a real Alpine database, apk's built-in rules: files under /etc only, no key, no directory", async () => {
      const { root, cleanup } = rootWithFixture('apk/installed-14-packages', '/lib/apk/db/installed');
      try {
        const db = await readApkDatabase(root);
        const conf = flagged(db);
        assert.ok(conf.includes('/etc/passwd'));
        assert.ok(conf.includes('/etc/ssl/openssl.cnf'));
        assert.ok(conf.includes('/etc/ssl/certs/ca-certificates.crt'));
        assert.ok(
          conf.every((p) => p.startsWith('/etc/') && !p.startsWith('/etc/apk/')),
          conf.join(' '),
        );
        const all = db.packages.flatMap((p) => p.files);
        assert.equal(
          all.find((f) => f.path === '/etc/apk/keys/alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub')
            ?.conffile,
          undefined,
        );
        assert.equal(all.find((f) => f.path === '/etc')?.conffile, undefined);
        // Every file the database lists under /etc but /etc/apk, and nothing else.
        const underEtc = all.filter(
          (f) => f.digest && f.path.startsWith('/etc/') && !f.path.startsWith('/etc/apk/'),
        );
        assert.deepEqual(conf, underEtc.map((f) => f.path).sort());
        assert.deepEqual(db.protectedPaths?.lists, []);
        // Not applied on request.
        assert.deepEqual(flagged(await readApkDatabase(root, { protectedPaths: false })), []);
      } finally {
        cleanup();
      }
    });

    it("the root's own lists, in name order; other files and directories there are not lists", async () => {
      const { root, cleanup } = rootWithFixture('apk/installed-14-packages', '/lib/apk/db/installed');
      try {
        const d = join(root, 'etc/apk/protected_paths.d');
        fs.mkdirSync(d, { recursive: true });
        fs.writeFileSync(join(d, 'b.list'), '+etc/ssl/openssl.cnf\n');
        fs.writeFileSync(join(d, 'a.list'), '-etc/ssl\n-etc/passwd\n');
        fs.writeFileSync(join(d, 'c.list.apk-new'), '-etc/shadow\n');
        fs.mkdirSync(join(d, 'd.list'));
        const db = await readApkDatabase(root);
        assert.deepEqual(db.protectedPaths?.lists, [
          '/etc/apk/protected_paths.d/a.list',
          '/etc/apk/protected_paths.d/b.list',
        ]);
        const conf = flagged(db);
        assert.ok(!conf.includes('/etc/passwd'));
        assert.ok(!conf.includes('/etc/ssl/certs/ca-certificates.crt'));
        assert.ok(conf.includes('/etc/ssl/openssl.cnf'));
        assert.ok(conf.includes('/etc/shadow'));
      } finally {
        cleanup();
      }
    });

    it('a list too large to be one is DATABASE_TOO_LARGE, naming it', () => {
      const { root, cleanup } = rootWithFixture('apk/installed-baselayout', '/lib/apk/db/installed');
      try {
        const d = join(root, 'etc/apk/protected_paths.d');
        fs.mkdirSync(d, { recursive: true });
        fs.writeFileSync(join(d, 'huge.list'), Buffer.alloc(1024 * 1024 + 1, 0x61));
        assert.throws(
          () => readApkProtectedPaths(RootDir.open(root)),
          (e: unknown) =>
            e instanceof PackageDatabaseError &&
            e.code === 'DATABASE_TOO_LARGE' &&
            /huge\.list/.test(e.message),
        );
      } finally {
        cleanup();
      }
    });
  });
});
