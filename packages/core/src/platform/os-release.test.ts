import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { PlatformError } from '../errors.js';
import { OS_RELEASE_MAX_BYTES, parseOsRelease } from './index.js';
import { fixturesDir } from '../testkit/pkgdb.js';

const FIXTURES = `${fixturesDir()}/os-release`;

describe('parseOsRelease', () => {
  // [what, text, expected]
  const cases: Array<[string, string, Record<string, string>]> = [
    ['unquoted', 'ID=debian\n', { ID: 'debian' }],
    ['double quotes', 'NAME="Debian GNU/Linux"\n', { NAME: 'Debian GNU/Linux' }],
    ['single quotes', "NAME='Debian GNU/Linux'\n", { NAME: 'Debian GNU/Linux' }],
    ['empty values', 'A=\nB=""\nC=\'\'\n', { A: '', B: '', C: '' }],
    ['no final newline', 'ID=alpine', { ID: 'alpine' }],
    ['escapes in double quotes', 'A="say \\"hi\\" \\\\ \\$HOME \\`x\\`"\n', { A: 'say "hi" \\ $HOME `x`' }],
    ['other backslashes in double quotes are kept', 'A="a\\nb\\tc"\n', { A: 'a\\nb\\tc' }],
    ['no escapes in single quotes', "A='a\\\"b\\\\'\n", { A: 'a\\"b\\\\' }],
    ['unquoted escapes', 'A=a\\ b\\"c\\\\d\n', { A: 'a b"c\\d' }],
    ['pieces are concatenated', 'A="a b"\'c d\'e\n', { A: 'a bc de' }],
    [
      'blanks around the value',
      'A=  value with spaces   \nB= "quoted"  \n',
      { A: 'value with spaces', B: 'quoted' },
    ],
    ['escaped trailing blank is kept', 'A=x\\ \n', { A: 'x ' }],
    ['blanks before the key and =', '  A =1\n\tB=2\n', { A: '1', B: '2' }],
    ['comments and blank lines', '# comment\n\n; also a comment\n   # indented\nA=1\n\n', { A: '1' }],
    ['a comment continued by a backslash', '# comment \\\nA=1\nB=2\n', { B: '2' }],
    ['line continuation unquoted', 'A=one\\\ntwo\nB=3\n', { A: 'onetwo', B: '3' }],
    ['line continuation in double quotes', 'A="one\\\ntwo"\n', { A: 'onetwo' }],
    ['multi-line single-quoted value', "A='one\ntwo'\nB=3\n", { A: 'one\ntwo', B: '3' }],
    ['CRLF line ends', 'ID="debian"\r\nVERSION_ID=12\r\n', { ID: 'debian', VERSION_ID: '12' }],
    ['a later assignment wins', 'ID=one\nID=two\n', { ID: 'two' }],
    ['= in the value', 'A=b=c\n', { A: 'b=c' }],
    ['unterminated quote at the end is kept', 'A="open\n', { A: 'open\n' }],
    [
      'lines without = or with a bad key are ignored',
      'garbage line\nexport A=1\n1ABC=2\nA-B=3\nGOOD_1=ok\n=nokey\n',
      { GOOD_1: 'ok' },
    ],
    ['non-ASCII values', 'PRETTY_NAME="Débian ✓"\n', { PRETTY_NAME: 'Débian ✓' }],
  ];
  for (const [what, text, expected] of cases) {
    it(what, () => assert.deepEqual(parseOsRelease(text), expected));
  }

  it('a __proto__ key is an ordinary key, not a prototype', () => {
    const r = parseOsRelease('__proto__=x\nID=debian\n');
    assert.equal(Object.getPrototypeOf(r), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(r, '__proto__')?.value, 'x');
    assert.equal(r.ID, 'debian');
  });

  it(`refuses more than ${OS_RELEASE_MAX_BYTES} bytes`, () => {
    const big = 'A=' + 'x'.repeat(OS_RELEASE_MAX_BYTES) + '\n';
    assert.throws(
      () => parseOsRelease(big),
      (e: unknown) =>
        e instanceof PlatformError && e.code === 'PLATFORM_NOT_DETECTED' && /more than/.test(e.message),
    );
  });

  const fixtures: Array<[string, Record<string, string>]> = [
    ['alpine', { ID: 'alpine', VERSION_ID: '3.11.6', PRETTY_NAME: 'Alpine Linux v3.11' }],
    ['centos', { ID: 'centos', ID_LIKE: 'rhel fedora', VERSION_ID: '8', CPE_NAME: 'cpe:/o:centos:centos:8' }],
    ['debian', { ID: 'debian', VERSION_ID: '8', VERSION: '8 (jessie)' }],
    ['fedora', { ID: 'fedora', VERSION_ID: '36', VERSION_CODENAME: '', ANSI_COLOR: '0;38;2;60;110;180' }],
    ['ubuntu', { ID: 'ubuntu', ID_LIKE: 'debian', VERSION_ID: '20.04', VERSION_CODENAME: 'focal' }],
  ];
  for (const [name, expected] of fixtures) {
    it(`parses the ${name} fixture`, () => {
      const parsed = parseOsRelease(fs.readFileSync(`${FIXTURES}/${name}/os-release`, 'utf8'));
      for (const [k, v] of Object.entries(expected)) assert.equal(parsed[k], v, k);
    });
  }

  it(
    'agrees with the shell on this machine’s /etc/os-release',
    { skip: !fs.existsSync('/etc/os-release') },
    async () => {
      const { execFileSync } = await import('node:child_process');
      const parsed = parseOsRelease(fs.readFileSync('/etc/os-release', 'utf8'));
      for (const key of Object.keys(parsed)) {
        const shell = execFileSync('sh', ['-c', `. /etc/os-release; printf %s "$${key}"`], {
          encoding: 'utf8',
        });
        assert.equal(parsed[key], shell, key);
      }
    },
  );
});
