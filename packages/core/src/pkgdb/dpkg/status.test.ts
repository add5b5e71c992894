import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PackageDatabaseError } from '../../errors.js';
import { parseDeb822 } from './deb822.js';
import { parseStatus } from './status.js';

const FILE = '/root/var/lib/dpkg/status';

/** Asserts DATABASE_CORRUPT at FILE:line with a message matching `pattern`. */
function corruptAt(line: number, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PackageDatabaseError, `not a PackageDatabaseError: ${String(e)}`);
    assert.equal(e.code, 'DATABASE_CORRUPT');
    assert.equal(e.file, FILE);
    assert.equal(e.line, line, e.message);
    assert.match(e.message, pattern);
    assert.ok(e.message.endsWith(`(${FILE}:${line})`), e.message);
    return true;
  };
}

const para = (...lines: string[]): string => lines.join('\n') + '\n\n';

describe('parseDeb822', () => {
  it('fields, continuation lines, case-insensitive names, line numbers', () => {
    const [p, q] = parseDeb822('Package: a\nDescription: short\n long\n .\n\tmore\n\n\nPACKAGE:b\n\n', FILE);
    assert.equal(p?.line, 1);
    assert.equal(p?.fields.get('description')?.value, 'short\n long\n .\n\tmore');
    assert.equal(p?.fields.get('description')?.line, 2);
    assert.equal(q?.line, 8);
    assert.equal(q?.fields.get('package')?.value, 'b');
  });

  it('an empty file has no paragraphs', () => assert.deepEqual(parseDeb822('', FILE), []));

  it('without dpkgWritten, the last line and paragraph may end with the text', () => {
    const [p] = parseDeb822('Origin: Debian\nSuite: stable\nDescription: x\n more', FILE);
    assert.equal(p?.fields.get('suite')?.value, 'stable');
    assert.equal(p?.fields.get('description')?.value, 'x\n more');
    assert.equal(parseDeb822('Origin: Debian\n', FILE).length, 1);
  });

  const cut: Array<[string, string, number, RegExp]> = [
    [
      'cut in the middle of a line',
      'Package: a\nVers',
      2,
      /middle of a line.*paragraph that starts at line 1/,
    ],
    [
      'cut at a line end inside a paragraph',
      'Package: a\nVersion: 1\n',
      2,
      /ends inside the paragraph that starts at line 1/,
    ],
  ];
  for (const [what, text, line, pattern] of cut) {
    it(`dpkgWritten: refuses a text ${what}`, () =>
      assert.throws(() => parseDeb822(text, FILE, { dpkgWritten: true }), corruptAt(line, pattern)));
  }

  const bad: Array<[string, string, number, RegExp]> = [
    ['a line that is not a field', 'Package: a\nthis is not a field\n\n', 2, /not a "Field: value" line/],
    ['a continuation first', ' continuation\n\n', 1, /continuation line without a field/],
    ['a field given twice', 'Package: a\npackage: b\n\n', 2, /appears twice/],
    ['an empty field name', ': value\n\n', 1, /not a "Field: value" line/],
    ['a field name with a blank', 'Pack age: a\n\n', 1, /invalid field name/],
  ];
  for (const [what, text, line, pattern] of bad) {
    it(`refuses ${what}`, () => assert.throws(() => parseDeb822(text, FILE), corruptAt(line, pattern)));
  }
});

describe('parseStatus', () => {
  const status = [
    para(
      'Package: coreutils',
      'Status: install ok installed',
      'Architecture: amd64',
      'Version: 9.1-1',
      'Essential: yes',
    ),
    para(
      'Package: libc6',
      'Status: hold ok installed',
      'Architecture: amd64',
      'Multi-Arch: same',
      'Source: glibc',
      'Version: 2.36-9+deb12u4',
      'Conffiles:',
      ' /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab',
    ),
    para(
      'Package: libc6',
      'Status: install ok triggers-pending',
      'Architecture: i386',
      'Multi-Arch: same',
      'Source: glibc (2.36-9+deb12u4)',
      'Version: 2.36-9+deb12u4',
    ),
    para(
      'Package: libfoo1',
      'Status: install ok installed',
      'Architecture: amd64',
      'Source: foo (1:1.2-3)',
      'Version: 1:1.2-3+b1',
      'Conffiles:',
      ' /etc/foo/a.conf 0123456789abcdef0123456789abcdef',
      ' /etc/foo/old.conf 0123456789abcdef0123456789abcdef obsolete',
      ' /etc/foo/with space.conf fedcba9876543210fedcba9876543210',
      ' /etc/foo/new.conf newconffile remove-on-upgrade',
    ),
    para('Package: half', 'Status: install ok half-configured', 'Architecture: all', 'Version: 1.0'),
    para('Package: unpacked', 'Status: install reinstreq unpacked', 'Architecture: all', 'Version: 1.0'),
    para('Package: removed', 'Status: deinstall ok config-files', 'Architecture: amd64', 'Version: 1.0'),
    para('Package: gone', 'Status: purge ok not-installed'),
    para('Package: triggered', 'Status: install ok triggers-awaited', 'Architecture: all', 'Version: 2'),
  ].join('');

  it('keeps installed and partially installed packages, with every field', () => {
    const entries = parseStatus(status, FILE);
    assert.deepEqual(
      entries.map((e) => `${e.name}:${e.architecture} ${e.state}`),
      [
        'coreutils:amd64 installed',
        'libc6:amd64 installed',
        'libc6:i386 triggers-pending',
        'libfoo1:amd64 installed',
        'half:all half-configured',
        'unpacked:all unpacked',
        'triggered:all triggers-awaited',
      ],
    );
    const [coreutils, libc6, libc6i386, libfoo] = entries;
    assert.deepEqual(coreutils?.source, { name: 'coreutils', version: '9.1-1' });
    assert.equal(coreutils?.multiArch, 'no');
    assert.equal(coreutils?.line, 1);
    assert.equal(libc6?.status, 'hold ok installed');
    assert.equal(libc6?.multiArch, 'same');
    assert.deepEqual(libc6?.source, { name: 'glibc', version: '2.36-9+deb12u4' });
    assert.deepEqual(libc6i386?.source, { name: 'glibc', version: '2.36-9+deb12u4' });
    assert.deepEqual(libfoo?.source, { name: 'foo', version: '1:1.2-3' });
    assert.equal(libfoo?.version, '1:1.2-3+b1');
    assert.deepEqual(libfoo?.conffiles, [
      {
        path: '/etc/foo/a.conf',
        hash: '0123456789abcdef0123456789abcdef',
        obsolete: false,
        removeOnUpgrade: false,
      },
      {
        path: '/etc/foo/old.conf',
        hash: '0123456789abcdef0123456789abcdef',
        obsolete: true,
        removeOnUpgrade: false,
      },
      {
        path: '/etc/foo/with space.conf',
        hash: 'fedcba9876543210fedcba9876543210',
        obsolete: false,
        removeOnUpgrade: false,
      },
      { path: '/etc/foo/new.conf', hash: 'newconffile', obsolete: false, removeOnUpgrade: true },
    ]);
  });

  const lines = (...l: string[]): string => l.join('\n');
  const bad: Array<[string, string, number, RegExp]> = [
    [
      'a truncated status (cut mid-paragraph)',
      status.slice(0, status.indexOf('Version: 2.36-9+deb12u4') + 12),
      12,
      /middle of a line.*paragraph that starts at line 7.*cut short/,
    ],
    [
      'garbage bytes',
      para('Package: pa', 'Status: install ok installed', 'Architecture: all', 'Version: 1') +
        '\u0000\u00ff\u0001garbage\n\n',
      6,
      /not a "Field: value" line/,
    ],
    [
      'a Version with spaces',
      para('Package: pa', 'Status: install ok installed', 'Architecture: all', 'Version: 1.0 beta'),
      4,
      /package pa: invalid Version.*embedded spaces/,
    ],
    [
      'a Version that is empty after the revision hyphen',
      para('Package: pa', 'Status: install ok installed', 'Architecture: all', 'Version: 1.0-'),
      4,
      /invalid Version/,
    ],
    [
      'a bad package name',
      para('Package: Bad_Name', 'Status: install ok installed'),
      1,
      /invalid package name "Bad_Name"/,
    ],
    [
      'a missing Package',
      para('Status: install ok installed', 'Version: 1'),
      1,
      /paragraph at line 1 has no Package/,
    ],
    [
      'a bad Status',
      para('Package: pa', 'Status: install ok exploded'),
      2,
      /invalid Status "install ok exploded"/,
    ],
    ['a Status of two words', para('Package: pa', 'Status: install installed'), 2, /invalid Status/],
    ['a missing Status', para('Package: pa', 'Version: 1'), 1, /package pa has no Status/],
    [
      'a missing Version',
      para('Package: pa', 'Status: install ok installed', 'Architecture: all'),
      1,
      /has no Version/,
    ],
    [
      'a missing Architecture',
      para('Package: pa', 'Status: install ok installed', 'Version: 1'),
      1,
      /has no Architecture/,
    ],
    [
      'a bad Architecture',
      para('Package: pa', 'Status: install ok installed', 'Architecture: AMD64', 'Version: 1'),
      3,
      /invalid Architecture "AMD64"/,
    ],
    [
      'a bad Source',
      para(
        'Package: pa',
        'Status: install ok installed',
        'Architecture: all',
        'Version: 1',
        'Source: foo (1.0) extra',
      ),
      5,
      /invalid Source/,
    ],
    [
      'a bad Source version',
      para(
        'Package: pa',
        'Status: install ok installed',
        'Architecture: all',
        'Version: 1',
        'Source: foo (:1)',
      ),
      5,
      /invalid Source version/,
    ],
    [
      'a bad Multi-Arch',
      para(
        'Package: pa',
        'Status: install ok installed',
        'Architecture: all',
        'Version: 1',
        'Multi-Arch: sometimes',
      ),
      5,
      /invalid Multi-Arch/,
    ],
    [
      'a conffile line without a hash',
      para(
        'Package: pa',
        'Status: install ok installed',
        'Architecture: all',
        'Version: 1',
        'Conffiles:',
        ' /etc/a.conf',
        ' /etc/b',
      ),
      6,
      /invalid Conffiles line "\/etc\/a.conf"/,
    ],
    [
      'a conffile path with ..',
      para(
        'Package: pa',
        'Status: install ok installed',
        'Architecture: all',
        'Version: 1',
        'Conffiles:',
        ' /etc/../shadow 0123456789abcdef0123456789abcdef',
      ),
      6,
      /conffile path "\/etc\/..\/shadow" has a ".." component/,
    ],
    [
      'a package listed twice',
      para('Package: pa', 'Status: install ok installed', 'Architecture: all', 'Version: 1') +
        para('Package: pa', 'Status: install ok installed', 'Architecture: all', 'Version: 2'),
      6,
      /pa:all is listed twice \(first at line 1\)/,
    ],
    ['a continuation without a field', lines(' /etc/x', '', ''), 1, /continuation line/],
  ];
  for (const [what, text, line, pattern] of bad) {
    it(`refuses ${what}, naming the line`, () =>
      assert.throws(() => parseStatus(text, FILE), corruptAt(line, pattern)));
  }

  it('checks only name and Status of packages that are not installed', () => {
    const text = para('Package: gone', 'Status: deinstall ok config-files', 'Version: not checked here');
    assert.deepEqual(parseStatus(text, FILE), []);
  });
});
