import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PackageDatabaseError } from '../../errors.js';
import { parseArchFile, parseDiversions } from './diversions.js';
import { pathProblem } from './fields.js';
import { parseFileList, parseMd5sums } from './info-files.js';

const FILE = '/root/var/lib/dpkg/info/x.list';

function corruptAt(line: number, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PackageDatabaseError, `not a PackageDatabaseError: ${String(e)}`);
    assert.equal(e.code, 'DATABASE_CORRUPT');
    assert.equal(e.file, FILE);
    assert.equal(e.line, line, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('pathProblem', () => {
  const ok = [
    '/',
    '/usr',
    '/usr/bin/ls',
    '/etc/.hidden',
    '/a/..b/c.',
    '/lib/systemd/system/system-systemd\\x2dcryptsetup.slice',
    '/with space/ü',
  ];
  for (const p of ok) it(`accepts ${p}`, () => assert.equal(pathProblem(p), undefined));
  const bad: Array<[string, RegExp]> = [
    ['usr/bin', /not absolute/],
    ['', /not absolute/],
    ['/usr//bin', /empty component/],
    ['/usr/bin/', /empty component/],
    ['/usr/./bin', /"\." component/],
    ['/usr/bin/.', /"\." component/],
    ['/usr/../etc/shadow', /"\.\." component/],
    ['/..', /"\.\." component/],
    ['/a\0b', /NUL/],
    ['/a\nb', /newline/],
    ['/bad\uFFFDutf8', /not valid UTF-8/],
    [`/${'x'.repeat(5000)}`, /longer than 4096 bytes/],
    [`/${'é'.repeat(2100)}`, /longer than 4096 bytes/],
  ];
  for (const [p, pattern] of bad)
    it(`refuses ${JSON.stringify(p.slice(0, 30))}`, () => assert.match(pathProblem(p) ?? '', pattern));
});

describe('parseFileList', () => {
  it('drops /. and keeps the order', () => {
    assert.deepEqual(parseFileList('/.\n/usr\n/usr/bin\n/usr/bin/ls\n', FILE), [
      '/usr',
      '/usr/bin',
      '/usr/bin/ls',
    ]);
    assert.deepEqual(parseFileList('', FILE), []);
    assert.deepEqual(parseFileList('/.\n', FILE), []);
  });

  const bad: Array<[string, string, number, RegExp]> = [
    ['a path with ..', '/.\n/usr\n/usr/../etc/shadow\n', 3, /"\/usr\/..\/etc\/shadow" has a ".." component/],
    ['a relative path', '/.\n/usr\nusr/bin\n', 3, /not absolute/],
    ['an empty line', '/.\n/usr\n\n/usr/bin\n', 3, /empty line/],
    ['a // path', '/.\n/usr//bin\n', 2, /empty component/],
    ['a NUL byte', '/.\n/usr\n/us\0r\n', 3, /NUL/],
    [
      'bytes that are not UTF-8',
      Buffer.from('/.\n/usr\n/\xff\xfe\n', 'latin1').toString('utf8'),
      3,
      /not valid UTF-8/,
    ],
    ['a cut-short last line', '/.\n/usr\n/usr/bi', 3, /cut short/],
    ['/./ inside a path', '/.\n/usr/./bin\n', 2, /"\." component/],
  ];
  for (const [what, text, line, pattern] of bad) {
    it(`refuses ${what}, naming the line`, () =>
      assert.throws(() => parseFileList(text, FILE), corruptAt(line, pattern)));
  }
});

describe('parseMd5sums', () => {
  const a = '0123456789abcdef0123456789abcdef';
  const b = 'FEDCBA9876543210FEDCBA9876543210';
  it('paths keyed without their leading /; binary-mode `*`; upper-case hex folded; no final newline', () => {
    const sums = parseMd5sums(`${a}  usr/bin/ls\n${b} *usr/share/doc/x y\n\n${a}  /already/absolute`, FILE);
    assert.deepEqual(sums, {
      names: ['usr/bin/ls', 'usr/share/doc/x y', 'already/absolute'],
      hexes: [a, b.toLowerCase(), a],
    });
  });

  it('accepts long paths that fit in 4096 bytes', () => {
    const name = `usr/${'x'.repeat(4000)}`;
    assert.deepEqual(parseMd5sums(`${a}  ${name}\n`, FILE).names, [name]);
    assert.deepEqual(parseFileList(`/.\n/${name}\n`, FILE), [`/${name}`]);
  });

  it('accepts dot files and backslashes as they are', () => {
    const sums = parseMd5sums(`${a}  etc/skel/.bashrc\n${a}  lib/systemd/system/a\\x2db.slice\n`, FILE);
    assert.deepEqual(sums.names, ['etc/skel/.bashrc', 'lib/systemd/system/a\\x2db.slice']);
  });

  const bad: Array<[string, string, number, RegExp]> = [
    ['a short hash', `${a}  usr/a\n0123  usr/b\n`, 2, /not "<md5> {2}<path>"/],
    ['one space', `${a} usr/a\n`, 1, /not "<md5> {2}<path>"/],
    ['a missing path', `${a}  usr/a\n${a}  \n`, 2, /not "<md5> {2}<path>"/],
    ['a non-hex hash', `${'g'.repeat(32)}  usr/a\n`, 1, /not "<md5> {2}<path>"/],
    ['a path with ..', `${a}  usr/a\n${a}  ../etc/shadow\n`, 2, /"..\/etc\/shadow" has a ".." component/],
    ['a path starting with ./', `${a}  ./usr/a\n`, 1, /"\." component/],
    ['a NUL', `${a}  usr/a\0\n`, 1, /NUL/],
    ['a control character in the hash', `${'\u0010'.repeat(32)}  usr/a\n`, 1, /not "<md5> {2}<path>"/],
    ['the root as a path', `${a}  /\n`, 1, /names the root directory/],
    ['a trailing /', `${a}  usr/a/\n`, 1, /empty component/],
    ['bytes that are not UTF-8', `${a}  usr/\uFFFD\n`, 1, /not valid UTF-8/],
    [`a path longer than 4096 bytes`, `${a}  ${'x'.repeat(4096)}\n`, 1, /longer than 4096 bytes/],
    [`a path longer than 4096 bytes in UTF-8`, `${a}  ${'é'.repeat(2048)}\n`, 1, /longer than 4096 bytes/],
  ];
  for (const [what, text, line, pattern] of bad) {
    it(`refuses ${what}, naming the line`, () =>
      assert.throws(() => parseMd5sums(text, FILE), corruptAt(line, pattern)));
  }
});

describe('parseDiversions', () => {
  it('reads triplets, with local diversions', () => {
    const text = '/bin/sh\n/bin/sh.distrib\ndash\n/usr/bin/local-thing\n/usr/bin/local-thing.orig\n:\n';
    assert.deepEqual(parseDiversions(text, FILE), [
      { from: '/bin/sh', to: '/bin/sh.distrib', by: 'dash' },
      { from: '/usr/bin/local-thing', to: '/usr/bin/local-thing.orig', by: ':' },
    ]);
    assert.deepEqual(parseDiversions('', FILE), []);
  });

  const bad: Array<[string, string, number, RegExp]> = [
    [
      'a missing third line',
      '/bin/sh\n/bin/sh.distrib\ndash\n/a\n/a.orig\n',
      6,
      /diversion of "\/a" that starts at line 4 lacks the package/,
    ],
    [
      'a missing second and third line',
      '/bin/sh\n/bin/sh.distrib\ndash\n/a\n',
      5,
      /lacks the "to" path and the package/,
    ],
    ['a cut-short line', '/bin/sh\n/bin/sh.distrib\nda', 3, /middle of a line/],
    ['a relative path', 'bin/sh\n/bin/sh.distrib\ndash\n', 1, /not absolute/],
    ['a .. in the target', '/bin/sh\n/bin/../../sh\ndash\n', 2, /".." component/],
    ['a bad package', '/bin/sh\n/bin/sh.distrib\nDash!\n', 3, /invalid diverting package/],
    ['a path diverted twice', '/a\n/a.1\np1\n/a\n/a.2\np2\n', 4, /already in the diversion at line 1/],
  ];
  for (const [what, text, line, pattern] of bad) {
    it(`refuses ${what}, naming the line`, () =>
      assert.throws(() => parseDiversions(text, FILE), corruptAt(line, pattern)));
  }
});

describe('parseArchFile', () => {
  it('reads one architecture per line, without duplicates', () => {
    assert.deepEqual(parseArchFile('amd64\ni386\n\narm64\ni386\n', FILE), ['amd64', 'i386', 'arm64']);
  });
  it('refuses a bad architecture, naming the line', () => {
    assert.throws(() => parseArchFile('amd64\n../x\n', FILE), corruptAt(2, /invalid architecture/));
  });
});
