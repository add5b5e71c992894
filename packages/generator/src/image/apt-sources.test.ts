import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { isGeneratorError } from '../errors.js';
import {
  aptListPrefix,
  loadSourcesFile,
  renderSource,
  snapshotDateOf,
  type AptSourceSpec,
} from './apt-sources.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-apt-sources-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(content: unknown): string {
  const f = path.join(dir, `sources-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
}

const snapshot: AptSourceSpec = {
  name: 'snapshot-20240210',
  kind: 'snapshot',
  uri: 'http://snapshot.invalid/archive/debian/20240210T000000Z/',
  suites: ['bookworm'],
  components: ['main'],
};

describe('extra apt sources: the operator’s file', () => {
  it('accepts a snapshot dated by its URI', async () => {
    const [s] = await loadSourcesFile(file({ sources: [snapshot] }));
    assert.equal(snapshotDateOf(s!), '2024-02-10T00:00:00Z');
  });

  for (const [what, content, message] of [
    ['not JSON', '{', /not JSON/],
    ['an unknown field', { sources: [{ ...snapshot, mirror: 'x' }] }, /mirror|unrecognized/i],
    ['a repository without its key', { sources: [{ ...snapshot, kind: 'repository' }] }, /signing key/],
    [
      'a snapshot without a date',
      { sources: [{ ...snapshot, uri: 'http://snapshot.invalid/debian/' }] },
      /date/,
    ],
    ['a URI that is not http(s)', { sources: [{ ...snapshot, uri: 'file:///srv/debian' }] }, /http/],
    ['a suite with a space', { sources: [{ ...snapshot, suites: ['bookworm main'] }] }, /suite/],
    ['the same name twice', { sources: [snapshot, snapshot] }, /used twice/],
    ['a name with a slash', { sources: [{ ...snapshot, name: '../x' }] }, /name/],
  ] as const) {
    it(`refuses ${what} with a message that says so`, async () => {
      await assert.rejects(
        loadSourcesFile(file(content)),
        (e: unknown) => isGeneratorError(e, 'INVALID_ARGUMENT') && message.test((e as Error).message),
      );
    });
  }

  it('refuses a key file that is not an armored public key', async () => {
    const key = path.join(dir, 'key.asc');
    fs.writeFileSync(key, 'not a key\n');
    const f = file({ sources: [{ ...snapshot, kind: 'repository', name: 'vendor', signedBy: key }] });
    const [s] = await loadSourcesFile(f);
    const { sourceFiles } = await import('./apt-sources.js');
    await assert.rejects(sourceFiles([s!], 'debian'), (e: unknown) =>
      /armored OpenPGP public key/.test((e as Error).message),
    );
  });
});

describe('extra apt sources: what the image gets', () => {
  it('checks a snapshot with the distribution keyring, not its expired Valid-Until, pinned at 100', () => {
    const files = renderSource(snapshot, 'debian');
    const list = files.get('/etc/apt/sources.list.d/sysattest-snapshot-20240210.sources');
    assert.match(list ?? '', /^Signed-By: \/usr\/share\/keyrings\/debian-archive-keyring\.gpg$/m);
    assert.match(list ?? '', /^Check-Valid-Until: no$/m);
    const pin = files.get('/etc/apt/preferences.d/sysattest-snapshot-20240210');
    assert.match(pin ?? '', /^Pin: origin "snapshot\.invalid"\nPin-Priority: 100$/m);
  });

  it('checks a repository with its own key only, and keeps Valid-Until', () => {
    const vendor: AptSourceSpec = { ...snapshot, name: 'vendor', kind: 'repository', signedBy: '/k.asc' };
    const files = renderSource(vendor, 'debian', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n…');
    const list = files.get('/etc/apt/sources.list.d/sysattest-vendor.sources') ?? '';
    assert.match(list, /^Signed-By: \/etc\/apt\/keyrings\/sysattest-vendor\.asc$/m);
    assert.doesNotMatch(list, /Check-Valid-Until/);
    assert.ok(files.has('/etc/apt/keyrings/sysattest-vendor.asc'));
  });

  it('names list files as apt does', () => {
    // As in this host's own /var/lib/apt/lists.
    assert.equal(
      aptListPrefix('http://deb.debian.org/debian', 'bookworm'),
      'deb.debian.org_debian_dists_bookworm',
    );
    assert.equal(
      aptListPrefix('http://127.0.0.1:8080/archive/debian/20240210T000000Z/', 'bookworm'),
      '127.0.0.1:8080_archive_debian_20240210T000000Z_dists_bookworm',
    );
    assert.equal(aptListPrefix('https://user:pw@repo.invalid/a_b~c', 'x'), 'repo.invalid_a%5fb%7ec_dists_x');
  });
});
