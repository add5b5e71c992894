import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  signManifest,
  type InstalledPackage,
  type Platform,
} from '@sysattest/core';
import type { ManifestFetchResult, ManifestRequest, ManifestSource, ManifestStatus } from './source.js';
import { TrustResolver } from './trust-resolution.js';

const PLATFORM: Platform = { distro: 'fedora', release: '41', arch: 'x86_64' };

function installed(name: string, version: string): InstalledPackage {
  return {
    name,
    version,
    architecture: 'x86_64',
    status: 'installed',
    files: [],
  } as unknown as InstalledPackage;
}

/** A source that refuses a request repeating an item, as the server does (400). */
class StrictSource implements ManifestSource {
  readonly asked: string[][] = [];
  constructor(private readonly answer: (item: ManifestRequest) => ManifestFetchResult) {}
  private check(items: readonly ManifestRequest[]): void {
    const keys = items.map((i) => `${i.name} ${i.version} ${i.arch}`);
    this.asked.push(keys);
    if (new Set(keys).size !== keys.length) throw new Error(`a lookup repeats an item: ${keys.join(', ')}`);
  }
  fetch(_platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestFetchResult[]> {
    this.check(items);
    return Promise.resolve(items.map((i) => this.answer(i)));
  }
  statuses(_platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestStatus[]> {
    this.check(items);
    return Promise.resolve(items.map(() => ({ status: 'pending' as const })));
  }
}

describe('TrustResolver', () => {
  it('asks about a package version the database lists twice once, and resolves both', async () => {
    const k = await generateSigningKey({ name: 'generator' });
    const key = await SigningKey.fromArmored(k.armoredSecretKey);
    const keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
    const signed = await signManifest(
      {
        schema: 'sysattest.manifest',
        schemaVersion: 1,
        platform: 'fedora/41/x86_64',
        package: {
          name: 'tool',
          version: '1.0-1',
          architecture: 'x86_64',
          source: { name: 'tool', version: '1.0-1' },
        },
        provenance: {
          generatedAt: '2026-11-01T00:00:00Z',
          generator: { name: 'test', version: '0' },
          keyFingerprint: key.fingerprint,
          image: { id: 'test-image' },
          installer: 'rpm 4.20',
        },
        entries: [],
      },
      key,
    );
    const source = new StrictSource(() => ({
      status: 'ok',
      bytes: signed.bytes,
      signature: signed.signature,
    }));
    const twice = [installed('tool', '1.0-1'), installed('tool', '1.0-1')];
    const resolver = new TrustResolver({
      keyring,
      source,
      primary: PLATFORM,
      byArch: new Map([['x86_64', twice]]),
    });
    const resolved = await resolver.resolve({ arch: 'x86_64', pkgs: twice });
    assert.deepEqual(
      resolved.map((r) => r.kind),
      ['verified', 'verified'],
    );
    assert.deepEqual(source.asked, [['tool 1.0-1 x86_64']]);
  });
});
