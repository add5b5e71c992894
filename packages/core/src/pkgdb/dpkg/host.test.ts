/**
 * Reads THIS machine's dpkg database (`/`) and checks it against dpkg's own tools. Skipped where
 * there is no dpkg.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { before, describe, it } from 'node:test';
import { readDpkgDatabase, type DpkgDatabase } from './index.js';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
}

function hasDpkg(): boolean {
  if (!fs.existsSync('/var/lib/dpkg/status')) return false;
  try {
    run('dpkg-query', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Packages to compare file by file: Essential ones, and libc6, which is Multi-Arch: same. */
const SAMPLE = ['coreutils', 'dpkg', 'bash', 'libc6'];

describe('readDpkgDatabase on this machine', { skip: !hasDpkg() && 'no dpkg here' }, () => {
  let db: DpkgDatabase;
  let elapsedMs = 0;

  before(async () => {
    const start = performance.now();
    db = await readDpkgDatabase('/');
    elapsedMs = performance.now() - start;
  });

  // Speed is a benchmark's business (npm run bench); the time is printed here for the record only.
  it('reads the whole database and says how long it took', (t) => {
    const files = db.packages.reduce((n, p) => n + p.files.length, 0);
    const digests = db.packages.reduce((n, p) => n + p.files.filter((f) => f.digest !== undefined).length, 0);
    t.diagnostic(
      `read ${db.packages.length} packages, ${files} paths, ${digests} digests, ${db.diversions.length} diversions, ` +
        `${db.notes.length} notes in ${elapsedMs.toFixed(1)} ms`,
    );
    assert.ok(db.packages.length > 0 && files > 0, 'an installed system has packages and files');
  });

  it('has the packages dpkg-query calls installed, with versions and sources', () => {
    // Installed = configured, perhaps with triggers pending: status letters i, W, t.
    const expected = run('dpkg-query', [
      '-W',
      '-f=${db:Status-Abbrev}|${Package}:${Architecture}|${Version}|${source:Package}|${source:Version}\n',
    ])
      .split('\n')
      .filter((l) => /^.[iWt]/.test(l))
      .map((l) => l.split('|').slice(1).join('|'))
      .sort();
    const actual = db.packages
      .map((p) => `${p.name}:${p.architecture}|${p.version}|${p.source.name}|${p.source.version}`)
      .sort();
    assert.deepEqual(actual, expected);
    const partial = run('dpkg-query', ['-W', '-f=${db:Status-Abbrev}\n'])
      .split('\n')
      .filter((l) => /^.[UFH]/.test(l));
    assert.equal(db.partiallyInstalled.length, partial.length);
  });

  it('native and foreign architectures agree with dpkg', () => {
    assert.equal(db.nativeArch, run('dpkg', ['--print-architecture']).trim());
    assert.deepEqual(
      db.foreignArchs,
      run('dpkg', ['--print-foreign-architectures'])
        .split('\n')
        .filter((a) => a !== ''),
    );
  });

  for (const name of SAMPLE) {
    it(`${name}: files equal dpkg -L, digests equal its md5sums file`, () => {
      const pkg = db.find(name);
      assert.ok(pkg, `${name} is installed`);
      const listed = run('dpkg', ['-L', `${name}:${pkg.architecture}`])
        .split('\n')
        .filter((l) => l.startsWith('/') && l !== '/.');
      assert.deepEqual(
        pkg.files.map((f) => f.path),
        listed,
      );

      const md5Path = run('dpkg-query', ['--control-path', `${name}:${pkg.architecture}`, 'md5sums']).trim();
      const shipped = new Map<string, string>(
        fs
          .readFileSync(md5Path, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l): [string, string] => [`/${l.slice(34)}`, l.slice(0, 32)]),
      );
      const conffiles = new Map(pkg.conffiles.map((c) => [c.path, c.hash]));
      for (const f of pkg.files) {
        const expected = shipped.get(f.path) ?? conffiles.get(f.path);
        assert.equal(f.digest?.hex, expected === 'newconffile' ? undefined : expected, f.path);
        assert.equal(f.conffile === true, conffiles.has(f.path), f.path);
      }
      assert.ok(pkg.files.some((f) => f.digest !== undefined));
    });
  }

  it('every package’s digests equal a plain reading of its md5sums file', () => {
    let compared = 0;
    for (const p of [...db.packages, ...db.partiallyInstalled]) {
      if (p.listFile === undefined) continue;
      const md5File = p.listFile.replace(/\.list$/, '.md5sums');
      const shipped = new Map<string, string>();
      if (fs.existsSync(md5File)) {
        for (const l of fs.readFileSync(md5File, 'utf8').split('\n')) {
          if (l !== '') shipped.set(`/${l.slice(34).replace(/^\//, '')}`, l.slice(0, 32).toLowerCase());
        }
      }
      const conffiles = new Map(p.conffiles.map((c) => [c.path, c.hash]));
      for (const f of p.files) {
        const conffileHash = conffiles.get(f.path);
        const expected = shipped.get(f.path) ?? (conffileHash === 'newconffile' ? undefined : conffileHash);
        if (f.digest?.hex !== expected)
          assert.fail(`${p.name}:${p.architecture} ${f.path}: ${f.digest?.hex} ≠ ${expected}`);
        if (expected !== undefined) compared++;
      }
    }
    assert.ok(compared > 1000, `${compared} digests compared`);
  });

  it('libc6 (Multi-Arch: same) was read from its name:arch files list', () => {
    const libc = db.find('libc6');
    assert.equal(libc?.multiArch, 'same');
    assert.equal(libc?.listFile, `/var/lib/dpkg/info/libc6:${libc?.architecture}.list`);
  });

  it('conffiles of every package equal dpkg-query ${Conffiles}', () => {
    const out = run('dpkg-query', [
      '-W',
      '-f=${db:Status-Abbrev}|${Package}:${Architecture}\n${Conffiles}\n@@\n',
    ]);
    const expected = new Map<string, string[]>();
    for (const block of out.split('\n@@\n')) {
      const [head = '', ...lines] = block.split('\n');
      if (!/^.[iWt]/.test(head)) continue;
      expected.set(
        head.split('|')[1] ?? '',
        lines.filter((l) => l.trim() !== '').map((l) => l.trim()),
      );
    }
    let compared = 0;
    for (const p of db.packages) {
      const ours = p.conffiles.map((c) =>
        [c.path, c.hash, c.obsolete ? 'obsolete' : '', c.removeOnUpgrade ? 'remove-on-upgrade' : '']
          .filter((w) => w !== '')
          .join(' '),
      );
      assert.deepEqual(ours, expected.get(`${p.name}:${p.architecture}`), `${p.name}:${p.architecture}`);
      compared += ours.length;
    }
    assert.ok(compared > 0, 'this machine has conffiles');
  });

  it('diversions equal dpkg-divert --list', () => {
    const expected = run('dpkg-divert', ['--list'])
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const local = /^local diversion of (.+) to (.+)$/.exec(l);
        if (local) return `${local[1]} -> ${local[2]} by :`;
        const m = /^diversion of (.+) to (.+) by (.+)$/.exec(l);
        assert.ok(m, l);
        return `${m[1]} -> ${m[2]} by ${m[3]}`;
      })
      .sort();
    assert.deepEqual(db.diversions.map((d) => `${d.from} -> ${d.to} by ${d.by}`).sort(), expected);
  });

  it('owners and diversions agree with dpkg -S', () => {
    for (const p of ['/bin/ls', '/usr/bin/dpkg', '/bin/bash', '/usr/share/doc']) {
      const expected = run('dpkg', ['-S', p])
        .split('\n')
        .filter((l) => l.endsWith(`: ${p}`) && !l.startsWith('diversion'))
        .flatMap((l) => l.slice(0, -(p.length + 2)).split(', '))
        .map((n) => n.split(':')[0])
        .sort();
      assert.deepEqual(
        db
          .owners(p)
          .map((o) => o.name)
          .sort(),
        expected,
        p,
      );
    }
    for (const d of db.diversions) {
      assert.equal(db.applyDiversions(d.from), d.to);
      if (d.by !== ':') assert.equal(db.applyDiversions(d.from, d.by), d.from);
    }
  });
});
