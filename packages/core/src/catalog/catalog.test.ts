import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { CatalogError, SignatureError } from '../errors.js';
import { SigningKey, TrustedKeyring, generateSigningKey } from '../openpgp/index.js';
import { dpkgVersionScheme } from '../versions/index.js';
import {
  newestVersions,
  serialiseCatalog,
  signCatalog,
  sortCatalogPackages,
  verifyCatalog,
} from './catalog.js';
import type { Catalog, CatalogPackage } from './schema.js';

function pkg(name: string, version: string, architecture = 'amd64'): CatalogPackage {
  return { name, version, architecture, source: { name, version }, size: 1000, sha256: 'a'.repeat(64) };
}

function sampleCatalog(fingerprint: string, packages: CatalogPackage[]): Catalog {
  return {
    schema: 'sysattest.catalog',
    schemaVersion: 1,
    platform: 'debian/bookworm/amd64',
    generatedAt: '2026-11-25T12:00:00Z',
    provenance: {
      generator: { name: 'sysattest-generator', version: '0.1.0' },
      keyFingerprint: fingerprint,
      image: { id: 'img' },
      sources: [{ name: 'Debian bookworm/main amd64', date: '2026-11-20T09:00:00Z' }],
    },
    packages: sortCatalogPackages(packages),
  };
}

describe('catalog snapshot v1', () => {
  let key: SigningKey;
  let keyring: TrustedKeyring;
  before(async () => {
    const k = await generateSigningKey({ name: 'catalog test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
  });

  it('signs and verifies; the verified content is what was signed', async () => {
    const c = sampleCatalog(key.fingerprint, [
      pkg('zlib1g', '1:1.2.13.dfsg-1'),
      pkg('base-files', '12.4', 'all'),
    ]);
    const signed = await signCatalog(c, key);
    const verified = await verifyCatalog(signed.bytes, signed.signature, keyring);
    assert.deepEqual(verified.content, c);
    assert.deepEqual(
      verified.content.packages.map((p) => p.name),
      ['base-files', 'zlib1g'],
    );
  });

  it('names the extra source a version comes from, declared among its sources', async () => {
    const c = sampleCatalog(key.fingerprint, [
      pkg('bash', '5.2.15-2'),
      { ...pkg('bash', '5.2.15-1'), origin: 'snap' },
    ]);
    c.provenance.sources.push({
      name: 'snap: Debian bookworm/main amd64',
      origin: { name: 'snap', kind: 'snapshot', snapshotDate: '2024-02-10T00:00:00Z' },
    });
    const signed = await signCatalog(c, key);
    const verified = await verifyCatalog(signed.bytes, signed.signature, keyring);
    assert.equal(verified.content.packages.find((p) => p.version === '5.2.15-1')?.origin, 'snap');
  });

  it('refuses tampering (a version changed after signing)', async () => {
    const signed = await signCatalog(sampleCatalog(key.fingerprint, [pkg('bash', '5.2.15-2')]), key);
    const tampered = Buffer.from(Buffer.from(signed.bytes).toString().replace('5.2.15-2', '5.2.15-3'));
    await assert.rejects(verifyCatalog(tampered, signed.signature, keyring), (e: unknown) => {
      return e instanceof SignatureError && e.code === 'BAD_SIGNATURE';
    });
  });

  for (const [what, packages, re] of [
    ['unsorted packages', [pkg('b', '1'), pkg('a', '1')], /out of order/],
    ['a package listed twice', [pkg('a', '1'), pkg('a', '1')], /listed twice/],
    ['a package of another architecture', [pkg('a', '1', 'arm64')], /is for arm64, not amd64/],
    ['a package whose origin no source declares', [{ ...pkg('a', '1'), origin: 'vendor' }], /no source/],
  ] as const) {
    it(`refuses ${what}`, () => {
      const c = sampleCatalog(key.fingerprint, []);
      c.packages = [...packages];
      assert.throws(
        () => serialiseCatalog(c),
        (e: unknown) => e instanceof CatalogError && e.code === 'CATALOG_INVALID' && re.test(e.message),
      );
    });
  }

  it('keeps a catalog without apk checksums valid, byte for byte, and accepts an apk one', async () => {
    // Catalogs written before apkChecksum existed serialise to the same bytes (no new keys).
    const debian = sampleCatalog(key.fingerprint, [pkg('bash', '5.2.15-2')]);
    assert.doesNotMatch(Buffer.from(serialiseCatalog(debian)).toString(), /apkChecksum/);
    // Alpine: the APKINDEX C: checksum instead of an archive SHA-256 (the index records none).
    const alpine: Catalog = {
      ...sampleCatalog(key.fingerprint, []),
      platform: 'alpine/3.20/x86_64',
      packages: [
        {
          name: 'musl',
          version: '1.2.5-r0',
          architecture: 'x86_64',
          source: { name: 'musl', version: '1.2.5-r0' },
          size: 411_000,
          apkChecksum: 'Q1hNO9gSVLEsHYs8hWmlUTzIE1KmE=',
        },
      ],
    };
    const signed = await signCatalog(alpine, key);
    const verified = await verifyCatalog(signed.bytes, signed.signature, keyring);
    assert.equal(verified.content.packages[0]?.apkChecksum, 'Q1hNO9gSVLEsHYs8hWmlUTzIE1KmE=');
    assert.equal(verified.content.packages[0]?.sha256, undefined);
  });

  for (const [what, change, re] of [
    ['a package with neither sha256 nor apkChecksum', { sha256: undefined }, /needs its archive sha256/],
    ['an apkChecksum that is not Q1/Q2 base64', { apkChecksum: 'Q1short=' }, /Q1 \+ base64 SHA-1/],
    ['an apkChecksum in hex', { apkChecksum: 'a'.repeat(40) }, /Q1 \+ base64 SHA-1/],
  ] as const) {
    it(`refuses ${what}`, () => {
      const c = sampleCatalog(key.fingerprint, []);
      const p: CatalogPackage = { ...pkg('a', '1'), ...change };
      if (p.sha256 === undefined) delete p.sha256;
      c.packages = [p];
      assert.throws(
        () => serialiseCatalog(c),
        (e: unknown) => e instanceof CatalogError && e.code === 'CATALOG_INVALID' && re.test(e.message),
      );
    });
  }

  it('finds the newest version of each package by dpkg ordering, not string order', () => {
    const c = sampleCatalog(key.fingerprint, [
      pkg('a', '1.10'),
      pkg('a', '1.9'),
      pkg('b', '2.0'),
      pkg('b', '1:1.0'),
      pkg('c', '1.0~rc1'),
      pkg('c', '1.0'),
      pkg('d', '1.0', 'all'),
    ]);
    const newest = newestVersions(c, dpkgVersionScheme);
    assert.equal(newest.get('a:amd64')?.version, '1.10');
    assert.equal(newest.get('b:amd64')?.version, '1:1.0');
    assert.equal(newest.get('c:amd64')?.version, '1.0');
    assert.equal(newest.get('d:all')?.version, '1.0');
    assert.equal(newest.size, 4);
  });
});
