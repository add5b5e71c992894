import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { detectPackageManager, readInstalledDatabase } from './installed.js';
import { rootWithFixture } from '../testkit/pkgdb.js';

describe('readInstalledDatabase picks the database the root has', () => {
  it('apk, rpm (sqlite and Berkeley DB), and nothing', async () => {
    const apk = rootWithFixture('apk/installed-14-packages', '/lib/apk/db/installed');
    const sqlite = rootWithFixture('rpm/cbl-mariner-2.0/rpmdb.sqlite', '/var/lib/rpm/rpmdb.sqlite');
    const bdb = rootWithFixture('rpm/libuuid-bdb/Packages', '/var/lib/rpm/Packages');
    try {
      assert.equal(detectPackageManager(apk.root), 'apk');
      const a = await readInstalledDatabase(apk.root);
      assert.deepEqual([a.manager, a.packages.length], ['apk', 14]);
      for (const [r, n] of [
        [sqlite.root, 129],
        [bdb.root, 1],
      ] as const) {
        assert.equal(detectPackageManager(r), 'rpm');
        const db = await readInstalledDatabase(r);
        assert.deepEqual([db.manager, db.packages.length], ['rpm', n]);
      }
      // A dpkg status file comes first (a Debian root with rpm installed for building rpms).
      fs.mkdirSync(join(sqlite.root, 'var/lib/dpkg'), { recursive: true });
      fs.writeFileSync(join(sqlite.root, 'var/lib/dpkg/status'), '');
      assert.equal(detectPackageManager(sqlite.root), 'dpkg');
      fs.rmSync(join(apk.root, 'lib'), { recursive: true });
      assert.equal(detectPackageManager(apk.root), undefined);
      await assert.rejects(readInstalledDatabase(apk.root), {
        code: 'DATABASE_NOT_FOUND',
        message: /no package database found \(looked for dpkg .*, rpm .*, apk .*\)/,
      });
    } finally {
      apk.cleanup();
      sqlite.cleanup();
      bdb.cleanup();
    }
  });
});
