import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { ManifestError, SignatureError } from '../errors.js';
import { SigningKey, TrustedKeyring, generateSigningKey } from '../openpgp/index.js';
import { canonicalJson } from '../signed/canonical-json.js';
import { VerifiedDocument, sha256Hex } from '../signed/signed-document.js';
import { manifestFileName, serialiseManifest, signManifest, verifyManifest } from './manifest.js';
import { MANIFEST_LIMITS, type Manifest } from './schema.js';

function sampleManifest(fingerprint: string): Manifest {
  return {
    schema: 'sysattest.manifest',
    schemaVersion: 1,
    platform: 'debian/bookworm/amd64',
    package: {
      name: 'iputils-ping',
      version: '3:20221126-1',
      architecture: 'amd64',
      source: { name: 'iputils', version: '3:20221126-1' },
    },
    provenance: {
      generatedAt: '2026-11-25T12:00:00Z',
      generator: { name: 'sysattest-generator', version: '0.1.0' },
      keyFingerprint: fingerprint,
      image: { id: 'sha256:' + 'a'.repeat(64) },
      installer: 'apt 2.6.1',
    },
    entries: [
      { type: 'dir', path: '/bin', mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      {
        type: 'file',
        path: '/bin/ping',
        mode: '0755',
        uid: 0,
        gid: 0,
        size: 90568,
        sha256: 'b'.repeat(64),
        capabilities: '0100000200200000000000000000000000000000',
        distroDigest: { algorithm: 'md5', hex: 'c'.repeat(32) },
      },
      {
        type: 'file',
        path: '/etc/ping.conf',
        mode: '0644',
        uid: 0,
        gid: 0,
        size: 10,
        sha256: 'd'.repeat(64),
        conffile: true,
      },
      { type: 'symlink', path: '/usr/bin/ping6', mode: '0777', uid: 0, gid: 0, target: 'ping' },
      {
        type: 'hardlink',
        path: '/usr/bin/tracepath',
        mode: '4755',
        uid: 0,
        gid: 0,
        size: 90568,
        sha256: 'b'.repeat(64),
        linkTo: '/bin/ping',
      },
    ],
  };
}

const clone = <T>(v: T): T => structuredClone(v);

/** The same value with every object's keys inserted in reverse order. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v)
      .reverse()
      .map(([k, x]) => [k, reverseKeys(x)]),
  );
}

async function rejects<C extends string>(
  p: Promise<unknown> | (() => unknown),
  code: C,
  re?: RegExp,
): Promise<void> {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (e: unknown) => {
      assert.ok(e instanceof ManifestError || e instanceof SignatureError, `unexpected error ${String(e)}`);
      assert.equal((e as ManifestError).code, code, (e as Error).message);
      if (re) assert.match((e as Error).message, re);
      return true;
    },
  );
}

describe('manifest v1', () => {
  let key: SigningKey;
  let other: SigningKey;
  let keyring: TrustedKeyring;
  let publicKey: string;

  before(async () => {
    const k = await generateSigningKey({ name: 'manifest test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    publicKey = k.armoredPublicKey;
    keyring = await TrustedKeyring.fromArmored(publicKey);
    other = await SigningKey.fromArmored(
      (await generateSigningKey({ name: 'someone else' })).armoredSecretKey,
    );
  });

  it('serialises deterministically, whatever the key order of the input objects', () => {
    const m = sampleManifest(key.fingerprint);
    const reordered = reverseKeys(m) as Manifest;
    const a = Buffer.from(serialiseManifest(m));
    const b = Buffer.from(serialiseManifest(reordered));
    assert.deepEqual(a, b);
    assert.ok(a.toString().startsWith('{"entries":[{"gid":0,"group":"root","mode":"0755"'));
  });

  it('round-trips: sign, verify, read back exactly what was signed', async () => {
    const m = sampleManifest(key.fingerprint);
    const signed = await signManifest(m, key);
    const verified = await verifyManifest(signed.bytes, signed.signature, keyring);
    assert.deepEqual(verified.content, m);
    assert.equal(verified.signerFingerprint, key.fingerprint);
    assert.equal(verified.digest, sha256Hex(signed.bytes));
    assert.equal(verified.digest, signed.digest);
    assert.ok(Math.abs(verified.signedAt.getTime() - Date.now()) < 60_000);
  });

  it('keeps its own copy of the bytes: changing the caller buffer later changes nothing', async () => {
    const signed = await signManifest(sampleManifest(key.fingerprint), key);
    const buf = Buffer.from(signed.bytes);
    const verified = await verifyManifest(buf, signed.signature, keyring);
    buf[10] = 0x20;
    assert.equal(sha256Hex(verified.bytes), signed.digest);
  });

  it('stock gpg --verify accepts a manifest signature', async (t) => {
    const signed = await signManifest(sampleManifest(key.fingerprint), key);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-manifest-gpg-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const gpg = (...args: string[]) =>
      execFileSync('gpg', ['--homedir', dir, '--batch', '--status-fd', '1', ...args], {
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    fs.writeFileSync(path.join(dir, 'key.asc'), publicKey);
    gpg('--import', path.join(dir, 'key.asc'));
    const file = path.join(dir, manifestFileName(sampleManifest(key.fingerprint).package));
    fs.writeFileSync(file, signed.bytes);
    fs.writeFileSync(file + '.asc', signed.signature);
    const status = gpg('--verify', file + '.asc', file);
    assert.match(status, new RegExp(`VALIDSIG ${key.fingerprint} `));
  });

  it('refuses a tampered manifest before reading it', async () => {
    const signed = await signManifest(sampleManifest(key.fingerprint), key);
    const tampered = Buffer.from(signed.bytes);
    const at = tampered.indexOf('bbbb');
    tampered[at] = 'e'.charCodeAt(0);
    await rejects(verifyManifest(tampered, signed.signature, keyring), 'BAD_SIGNATURE');
  });

  it('refuses a manifest signed by a key that is not pinned', async () => {
    const signed = await signManifest(sampleManifest(other.fingerprint), other);
    await rejects(verifyManifest(signed.bytes, signed.signature, keyring), 'UNKNOWN_SIGNER');
  });

  it('refuses a manifest that names another key than the one that signed it', async () => {
    // The pinned key signs bytes claiming to come from a different generator key.
    const m = sampleManifest(other.fingerprint);
    const bytes = Buffer.from(canonicalJson(m));
    await rejects(verifyManifest(bytes, await key.sign(bytes), keyring), 'UNKNOWN_SIGNER', /manifest says/);
    await rejects(signManifest(m, key), 'MANIFEST_MISMATCH');
  });

  it('refuses signed bytes that are not canonical (pretty-printed, duplicate keys)', async () => {
    const m = sampleManifest(key.fingerprint);
    const pretty = Buffer.from(JSON.stringify(JSON.parse(canonicalJson(m)), null, 2));
    await rejects(verifyManifest(pretty, await key.sign(pretty), keyring), 'MANIFEST_INVALID', /canonical/);
    const dup = Buffer.from(
      canonicalJson(m).replace('{"entries"', '{"platform":"debian/sid/amd64","entries"'),
    );
    await rejects(verifyManifest(dup, await key.sign(dup), keyring), 'MANIFEST_INVALID', /canonical/);
  });

  it('refuses signed garbage and signed JSON that does not match the schema', async () => {
    for (const [bytes, re] of [
      [Buffer.from([0xff, 0xfe, 0x00]), /UTF-8/],
      [Buffer.from('{"a":'), /not valid JSON/],
      [Buffer.from(canonicalJson({ schema: 'sysattest.manifest', schemaVersion: 2 })), /schemaVersion/],
    ] as const) {
      await rejects(verifyManifest(bytes, await key.sign(bytes), keyring), 'MANIFEST_INVALID', re);
    }
  });

  it('refuses an oversized manifest without checking its signature', async () => {
    const huge = new Uint8Array(MANIFEST_LIMITS.maxBytes + 1);
    await rejects(verifyManifest(huge, 'not even a signature', keyring), 'MANIFEST_TOO_LARGE');
  });

  it('cannot be constructed except by verifying', () => {
    const Ctor = VerifiedDocument as unknown as new (...args: unknown[]) => unknown;
    assert.throws(
      () => new Ctor(Symbol('verified'), {}, new Uint8Array(), '', '', new Date()),
      /verifyDocument/,
    );
  });

  describe('schema', () => {
    const cases: Array<[string, (m: Manifest) => void, RegExp]> = [
      ['entries out of order', (m) => m.entries.reverse(), /out of order/],
      ['a path listed twice', (m) => m.entries.splice(1, 0, clone(m.entries[1]!)), /listed twice/],
      ['a relative path', (m) => (m.entries[1]!.path = 'bin/ping'), /absolute normalised path/],
      ['a path with ..', (m) => (m.entries[1]!.path = '/bin/../ping'), /absolute normalised path/],
      ['a path with a trailing slash', (m) => (m.entries[0]!.path = '/bin/'), /absolute normalised path/],
      [
        'a mode that is not 4 octal digits',
        (m) => ((m.entries[1] as { mode: string }).mode = '755'),
        /octal/,
      ],
      ['a file without sha256', (m) => delete (m.entries[1] as { sha256?: string }).sha256, /sha256/],
      ['an upper-case sha256', (m) => ((m.entries[1] as { sha256: string }).sha256 = 'B'.repeat(64)), /hex/],
      ['a symlink without target', (m) => delete (m.entries[3] as { target?: string }).target, /target/],
      ['an unknown entry type', (m) => ((m.entries[0] as { type: string }).type = 'door'), /type/],
      [
        'an unknown field',
        (m) => ((m.entries[0] as Record<string, unknown>).color = 'red'),
        /Unrecognized key/,
      ],
      [
        'a hard link to a path that is not a file entry',
        (m) => ((m.entries[4] as { linkTo: string }).linkTo = '/bin'),
        /hard link/,
      ],
      [
        'arch that differs from the platform',
        (m) => (m.package.architecture = 'arm64'),
        /platform debian\/bookworm\/amd64 is for amd64/,
      ],
      ['a bad platform id', (m) => (m.platform = 'Debian/bookworm'), /platform/],
      ['a negative uid', (m) => ((m.entries[0] as { uid: number }).uid = -1), /uid/],
      ['a fractional size', (m) => ((m.entries[1] as { size: number }).size = 1.5), /size/],
      ['a bad fingerprint', (m) => (m.provenance.keyFingerprint = 'abc'), /fingerprint/],
      ['a non-UTC time', (m) => (m.provenance.generatedAt = '2026-11-25T12:00:00+01:00'), /UTC/],
      ['a package name with a space', (m) => (m.package.name = 'bad name'), /package name/],
    ];
    for (const [what, mutate, re] of cases) {
      it(`refuses ${what}`, () => {
        const m = sampleManifest('A'.repeat(40));
        mutate(m);
        assert.throws(
          () => serialiseManifest(m),
          (e: unknown) => e instanceof ManifestError && e.code === 'MANIFEST_INVALID' && re.test(e.message),
        );
      });
    }

    it('accepts setuid, setgid and sticky bits, device entries and absent paths', () => {
      const m = sampleManifest('A'.repeat(40));
      m.entries.push({
        type: 'chardev',
        path: '/usr/dev/null',
        mode: '0666',
        uid: 0,
        gid: 0,
        major: 1,
        minor: 3,
      });
      m.entries.push({ type: 'dir', path: '/usr/tmp', mode: '1777', uid: 0, gid: 0 });
      m.entries.push({ type: 'absent', path: '/usr/zz-removed-by-postinst' });
      assert.ok(serialiseManifest(m).length > 0);
    });
  });

  describe('absent entries and why they are absent', () => {
    // A manifest as the generator wrote them before `reason` existed: its exact canonical bytes.
    const OLD_BYTES =
      '{"entries":[{"gid":0,"mode":"0755","path":"/usr/lib/t","type":"dir","uid":0},' +
      '{"conffile":true,"path":"/usr/lib/t/conf","type":"absent"},' +
      '{"path":"/usr/lib/t/state","type":"absent"}],' +
      '"package":{"architecture":"x86_64","name":"t","source":{"name":"t","version":"1-1"},"version":"1-1"},' +
      '"platform":"fedora/41/x86_64",' +
      '"provenance":{"generatedAt":"2026-11-25T12:00:00Z","generator":{"name":"sysattest-generator","version":"0.1.0"},' +
      `"image":{"id":"${'e'.repeat(64)}"},"installer":"dnf5 5.2.6","keyFingerprint":"${'A'.repeat(40)}"},` +
      '"schema":"sysattest.manifest","schemaVersion":1}\n';

    it('an old manifest without `reason` is still valid and serialises to the same bytes', () => {
      const m = JSON.parse(OLD_BYTES) as Manifest;
      const bytes = serialiseManifest(m);
      assert.equal(Buffer.from(bytes).toString('utf8'), OLD_BYTES);
      assert.equal(sha256Hex(bytes), sha256Hex(Buffer.from(OLD_BYTES)));
    });

    it('an old signed manifest still verifies and parses, with no reason on its absent entries', async () => {
      const old = JSON.parse(OLD_BYTES.replaceAll('A'.repeat(40), key.fingerprint)) as Manifest;
      const signed = await signManifest(old, key);
      assert.equal(
        Buffer.from(signed.bytes).toString('utf8'),
        OLD_BYTES.replaceAll('A'.repeat(40), key.fingerprint),
      );
      const v = await verifyManifest(signed.bytes, signed.signature, keyring);
      const absent = v.content.entries.filter((e) => e.type === 'absent');
      assert.deepEqual(
        absent.map((e) => [e.path, e.reason]),
        [
          ['/usr/lib/t/conf', undefined],
          ['/usr/lib/t/state', undefined],
        ],
      );
    });

    it('`reason` is serialised in its sorted place, and only when set', () => {
      const m = JSON.parse(OLD_BYTES) as Manifest;
      m.entries[2] = { type: 'absent', path: '/usr/lib/t/state', reason: 'ghost' };
      m.entries.push({ type: 'absent', path: '/usr/share/doc/t/README', reason: 'not-installed' });
      const text = Buffer.from(serialiseManifest(m)).toString('utf8');
      assert.ok(text.includes('{"path":"/usr/lib/t/state","reason":"ghost","type":"absent"}'), text);
      assert.ok(text.includes('{"path":"/usr/share/doc/t/README","reason":"not-installed","type":"absent"}'));
      assert.ok(text.includes('{"conffile":true,"path":"/usr/lib/t/conf","type":"absent"}'));
    });

    const refused: [string, (m: Manifest) => void][] = [
      [
        'an unknown reason',
        (m) => (m.entries[2] = { type: 'absent', path: '/usr/lib/t/state', reason: 'excluded' } as never),
      ],
      [
        'a reason on an entry that is not absent',
        (m) => (m.entries[0] = { ...(m.entries[0] as object), reason: 'ghost' } as never),
      ],
    ];
    for (const [what, mutate] of refused) {
      it(`refuses ${what}`, () => {
        const m = JSON.parse(OLD_BYTES) as Manifest;
        mutate(m);
        assert.throws(
          () => serialiseManifest(m),
          (e: unknown) => e instanceof ManifestError && e.code === 'MANIFEST_INVALID',
        );
      });
    }
  });

  describe('diversions the package makes', () => {
    // dash in Debian bookworm, as its manifest carries them.
    const DASH = [
      { from: '/bin/sh', to: '/bin/sh.distrib' },
      { from: '/usr/share/man/man1/sh.1.gz', to: '/usr/share/man/man1/sh.distrib.1.gz' },
    ];
    const withDiversions = (diversions: unknown): Manifest =>
      ({ ...sampleManifest(key.fingerprint), diversions }) as Manifest;

    it('valid diversions are signed, verify, and are serialised in their sorted place', async () => {
      const m = withDiversions(structuredClone(DASH));
      const text = Buffer.from(serialiseManifest(m)).toString('utf8');
      assert.ok(
        text.includes(
          '"diversions":[{"from":"/bin/sh","to":"/bin/sh.distrib"},' +
            '{"from":"/usr/share/man/man1/sh.1.gz","to":"/usr/share/man/man1/sh.distrib.1.gz"}],"entries":',
        ),
        text,
      );
      const signed = await signManifest(m, key);
      const v = await verifyManifest(signed.bytes, signed.signature, keyring);
      assert.deepEqual(v.content.diversions, DASH);
    });

    it('a manifest without diversions has no field, and its bytes are as before the field existed', () => {
      const m = sampleManifest(key.fingerprint);
      const text = Buffer.from(serialiseManifest(m)).toString('utf8');
      assert.ok(!text.includes('diversions'));
      assert.equal(text, canonicalJson(m));
    });

    const refused: [string, unknown, RegExp][] = [
      [
        'unsorted diversions',
        [...DASH].reverse(),
        /\/bin\/sh is out of order \(diversions are sorted by from\)/,
      ],
      [
        'a path diverted twice',
        [DASH[0], { from: '/bin/sh', to: '/bin/sh.other' }],
        /\/bin\/sh is diverted twice/,
      ],
      [
        'a divert-to path repeated',
        [
          { from: '/bin/a', to: '/bin/x.distrib' },
          { from: '/bin/b', to: '/bin/x.distrib' },
        ],
        /diversions\.1\.to: \/bin\/x\.distrib is repeated: it is already the to of diversion 0/,
      ],
      [
        'a path that is the from of one diversion and the to of another',
        [
          { from: '/bin/a', to: '/bin/b' },
          { from: '/bin/b', to: '/bin/c' },
        ],
        /\/bin\/b is repeated: it is already the to of diversion 0/,
      ],
      [
        'a path diverted to itself',
        [{ from: '/bin/a', to: '/bin/a' }],
        /\/bin\/a is repeated: it is already the from of diversion 0/,
      ],
      [
        'a relative from path',
        [{ from: 'bin/sh', to: '/bin/sh.distrib' }],
        /diversions\.0\.from: must be an absolute normalised path/,
      ],
      [
        'a relative to path',
        [{ from: '/bin/sh', to: 'sh.distrib' }],
        /diversions\.0\.to: must be an absolute normalised path/,
      ],
      ['a path with ..', [{ from: '/bin/../sh', to: '/bin/sh.distrib' }], /absolute normalised path/],
      ['an unknown field', [{ ...DASH[0], by: 'dash' }], /Unrecognized key/],
      ['a missing to', [{ from: '/bin/sh' }], /diversions\.0\.to/],
      ['an empty list (no diversions means no field)', [], /diversions/],
      [
        'more than the limit',
        Array.from({ length: MANIFEST_LIMITS.maxDiversions + 1 }, (_, i) => ({
          from: `/d/${String(i).padStart(6, '0')}`,
          to: `/d/${String(i).padStart(6, '0')}.distrib`,
        })),
        /diversions/,
      ],
    ];
    for (const [what, diversions, re] of refused) {
      it(`refuses ${what}`, async () => {
        const m = withDiversions(diversions);
        assert.throws(
          () => serialiseManifest(m),
          (e: unknown) => e instanceof ManifestError && e.code === 'MANIFEST_INVALID' && re.test(e.message),
        );
        // …and the same content signed by a pinned key as it stands is refused by the verifier.
        const bytes = Buffer.from(canonicalJson(m));
        await rejects(verifyManifest(bytes, await key.sign(bytes), keyring), 'MANIFEST_INVALID', re);
      });
    }

    it('the limit itself is accepted', () => {
      const m = withDiversions(
        Array.from({ length: MANIFEST_LIMITS.maxDiversions }, (_, i) => ({
          from: `/d/${String(i).padStart(6, '0')}`,
          to: `/d/${String(i).padStart(6, '0')}.distrib`,
        })),
      );
      assert.ok(serialiseManifest(m).length > 0);
    });
  });

  it('names files like Debian archives, with the epoch colon escaped', () => {
    assert.equal(
      manifestFileName({ name: 'iputils-ping', version: '3:20221126-1', architecture: 'amd64' }),
      'iputils-ping_3%3a20221126-1_amd64.json',
    );
  });
});
