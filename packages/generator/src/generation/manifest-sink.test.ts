/**
 * The hand-over from generation to a sink, without podman: a manifest is built, signed and put in
 * the sink in memory; the directory sink writes exactly the files `generate` always wrote; a
 * manifest that cannot be built or kept fails alone, carrying a code (never only a message).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  verifyManifest,
  type InstalledPackage,
} from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import { ManifestBuildError, buildManifest } from './manifest-builder.js';
import { DirectorySink, handOver, type ManifestSink, type SignedManifest } from './manifest-sink.js';
import type { GenerationEvent, GenerationOutcome } from './results.js';

const PKG: InstalledPackage = {
  name: 'hello',
  version: '2.10-3',
  architecture: 'amd64',
  source: { name: 'hello', version: '2.10-3' },
  status: 'installed',
  files: [{ path: '/usr/share/doc/hello' }],
};

/** hello's manifest, naming `fingerprint` as its signer. */
function builder(fingerprint: string) {
  return () =>
    buildManifest(PKG, {
      distroRelease: 'debian/bookworm',
      provenance: {
        generatedAt: '2026-12-06T12:00:00Z',
        generator: { name: 'sysattest-generator', version: '0.1.0' },
        keyFingerprint: fingerprint,
        image: { id: 'e'.repeat(64) },
        installer: 'apt 2.6.1',
      },
      accounts: { users: new Map([[0, 'root']]), groups: new Map([[0, 'root']]) },
      divertedLocation: (p) => p,
      observation: (p) => ({
        status: 'ok',
        type: 'dir',
        path: p,
        resolvedPath: p,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: 4096,
        mtimeMs: 0,
        nlink: 2,
        dev: 1,
        ino: 2,
      }),
    });
}

/** A sink that keeps what it is given, in memory. */
class MemorySink implements ManifestSink {
  readonly kept: SignedManifest[] = [];
  put(m: SignedManifest): Promise<string> {
    this.kept.push(m);
    return Promise.resolve(`memory:${this.kept.length}`);
  }
}

describe('handing manifests to a sink', () => {
  let dir: string;
  let key: SigningKey;
  let keyring: TrustedKeyring;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-sink-test-'));
    const k = await generateSigningKey({ name: 'sink test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const outcome = (): GenerationOutcome => ({ manifests: [], failures: [] });

  it('puts the signed bytes in the sink in memory, and reports where the sink keeps them', async () => {
    const sink = new MemorySink();
    const into = outcome();
    const events: GenerationEvent[] = [];
    await handOver(PKG, 'hello=2.10-3', builder(key.fingerprint), {
      key,
      sink,
      into,
      emit: (e) => events.push(e),
    });
    assert.equal(sink.kept.length, 1);
    const { signed, manifest } = sink.kept[0] as SignedManifest;
    const verified = await verifyManifest(signed.bytes, signed.signature, keyring);
    assert.deepEqual(verified.content, manifest);
    assert.deepEqual(into, {
      manifests: [{ name: 'hello', version: '2.10-3', architecture: 'amd64', file: 'memory:1' }],
      failures: [],
    });
    assert.deepEqual(
      events.map((e) => e.kind),
      ['manifest'],
    );
  });

  it('the directory sink writes <dir>/<platform>/<name>_<version>_<arch>.json and its .asc', async () => {
    const sink = new DirectorySink(dir);
    const into = outcome();
    await handOver(PKG, 'hello=2.10-3', builder(key.fingerprint), { key, sink, into, emit: () => {} });
    const file = path.join(dir, 'debian/bookworm/amd64/hello_2.10-3_amd64.json');
    assert.equal(into.manifests[0]?.file, file);
    const verified = await verifyManifest(
      fs.readFileSync(file),
      fs.readFileSync(`${file}.asc`, 'utf8'),
      keyring,
    );
    assert.equal(verified.content.package.name, 'hello');
    assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), [
      'hello_2.10-3_amd64.json',
      'hello_2.10-3_amd64.json.asc',
    ]);
  });

  it('a sink that cannot keep a manifest fails that package with OUTPUT_FAILED', async () => {
    // A file where the platform directory should be: the write fails.
    const blocked = path.join(dir, 'blocked');
    fs.writeFileSync(blocked, '');
    const into = outcome();
    const events: GenerationEvent[] = [];
    await handOver(PKG, 'hello=2.10-3', builder(key.fingerprint), {
      key,
      sink: new DirectorySink(blocked),
      into,
      emit: (e) => events.push(e),
    });
    assert.equal(into.manifests.length, 0);
    assert.equal(into.failures.length, 1);
    const f = into.failures[0];
    assert.deepEqual(
      [f?.code, f?.name, f?.version, f?.request],
      ['OUTPUT_FAILED', 'hello', '2.10-3', 'hello=2.10-3'],
    );
    assert.match(f?.message ?? '', /^cannot write /);
    assert.deepEqual(events, [{ kind: 'failed', ...f }]);
  });

  it('a manifest that cannot be built is GENERATION_FAILED; a GeneratorError keeps its own code', async () => {
    const into = outcome();
    const to = { key, sink: new MemorySink(), into, emit: () => {} };
    await handOver(
      PKG,
      'a',
      () => {
        throw new ManifestBuildError('hello: /x was not inspected');
      },
      to,
    );
    await handOver(
      PKG,
      'b',
      () => {
        throw new GeneratorError('UNKNOWN_VERSION', 'not offered');
      },
      to,
    );
    assert.deepEqual(
      into.failures.map((f) => [f.request, f.code, f.message]),
      [
        ['a', 'GENERATION_FAILED', 'hello: /x was not inspected'],
        ['b', 'UNKNOWN_VERSION', 'not offered'],
      ],
    );
  });
});
