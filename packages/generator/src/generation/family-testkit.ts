/**
 * Test material for the rpm and apk families, made on this Debian machine (not a test file):
 *
 * - rpms built with `rpmbuild`;
 * - a "Fedora-like" root: Debian's own `rpm` binary with its libraries, an rpm database made with
 *   `rpm --root`, the built rpms in /srv/sa-repo, their `createrepo_c` metadata cached where dnf5
 *   keeps it (/var/cache/libdnf5/<repo>-<hash>/repodata), and a stand-in `dnf`;
 * - an Alpine-like root: an installed database with correct `Z:` checksums, an APKINDEX cached
 *   in /var/cache/apk, and a stand-in `apk`.
 *
 * No Fedora or Alpine repository is reachable from here, and Debian has no dnf or apk that runs
 * in such a root, hence the stand-ins (static C programs built here with gcc). They are exact
 * about what they are: the `dnf` stand-in accepts only the command lines the generator sends
 * (`dnf install --assumeyes … -- NEVRA…`, `dnf makecache --refresh`), prints them, answers
 * "No match for argument" for a package its repository list lacks, as dnf does, and installs by
 * running the image's real `rpm -i` on the matching local rpm files — so the files, digests and
 * database the generator reads come from a real rpm install in the container. The `apk`
 * stand-in accepts `apk update` and `apk add --no-cache -- name=version…` for packages already
 * installed in the image (it installs nothing: there is no apk here to install with).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export const sha256File = (file: string): string =>
  createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const STAND_IN_C = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Looks a package spec up in a "SPEC PATH" list; returns the path (or "" for apk) or NULL. */
static char *lookup(const char *list, const char *spec) {
  static char line[4096];
  FILE *f = fopen(list, "r");
  if (!f) return NULL;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *sp = strchr(line, ' ');
    if (sp) *sp = 0;
    if (strcmp(line, spec) == 0) { fclose(f); return strdup(sp ? sp + 1 : ""); }
  }
  fclose(f);
  return NULL;
}

int main(int argc, char **argv) {
  const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  printf("stand-in %s:", self);
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");
  fflush(stdout);
  int dnf = strcmp(self, "dnf") == 0;
  if (argc == 3 && strcmp(argv[1], dnf ? "makecache" : "update") == 0 && dnf && strcmp(argv[2], "--refresh") == 0) return 0;
  if (argc == 2 && !dnf && strcmp(argv[1], "update") == 0) return 0;
  const char *expect[] = {"install", "--assumeyes", "--setopt=install_weak_deps=False",
                          "--setopt=keepcache=False", "--setopt=tsflags=", "--"};
  const char *expect_apk[] = {"add", "--no-cache", "--"};
  const char **e = dnf ? expect : expect_apk;
  int n = dnf ? 6 : 3;
  if (argc <= n) { fprintf(stderr, "stand-in %s: unexpected command line\n", self); return 2; }
  for (int i = 0; i < n; i++)
    if (strcmp(argv[i + 1], e[i]) != 0) { fprintf(stderr, "stand-in %s: unexpected argument %s\n", self, argv[i + 1]); return 2; }
  char **rpm = calloc(argc + 8, sizeof *rpm);
  int k = 0;
  rpm[k++] = "rpm"; rpm[k++] = "-i"; rpm[k++] = "--nodeps"; rpm[k++] = "--noscripts";
  for (int i = n + 1; i < argc; i++) {
    char *path = lookup("/etc/sa-standin/repository", argv[i]);
    if (!path) {
      if (dnf) fprintf(stderr, "No match for argument: %s\nError: Unable to find a match: %s\n", argv[i], argv[i]);
      else fprintf(stderr, "ERROR: unable to select packages:\n  %s (no such package)\n", argv[i]);
      return 1;
    }
    rpm[k++] = path;
  }
  if (!dnf) return 0;
  execv("/usr/bin/rpm", rpm);
  perror("stand-in dnf: execv /usr/bin/rpm");
  return 127;
}
`;

/** Builds the stand-in as a static binary at `out` (behaviour by file name: dnf or apk). */
export function buildStandIn(work: string, out: string): void {
  const src = join(work, 'stand-in.c');
  fs.writeFileSync(src, STAND_IN_C);
  run('gcc', ['-static', '-O1', '-o', out, src]);
}

export interface BuiltRpm {
  name: string;
  /** `[epoch:]version-release` */
  version: string;
  arch: string;
  file: string;
}

/** rpms of these specs (name → spec body), built with rpmbuild (SHA-256 file digests). */
export function buildRpms(work: string, specs: Record<string, string>): BuiltRpm[] {
  const out: BuiltRpm[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const file = join(work, `${name}.spec`);
    fs.writeFileSync(file, spec);
    const top = join(work, `top-${name}`);
    run('rpmbuild', [
      '-bb',
      '--define',
      `_topdir ${top}`,
      '--define',
      'debug_package %{nil}',
      '--define',
      '__os_install_post %{nil}',
      file,
    ]);
    for (const d of fs.readdirSync(join(top, 'RPMS')))
      for (const f of fs.readdirSync(join(top, 'RPMS', d))) {
        const rpm = join(top, 'RPMS', d, f);
        const q = run('rpm', [
          '-qp',
          '--qf',
          '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}',
          rpm,
        ]);
        const [n, v, a] = q.split('\t') as [string, string, string];
        out.push({ name: n, version: v, arch: a, file: rpm });
      }
  }
  return out;
}

/**
 * The Fedora-like root: Debian's rpm and its libraries, `preinstalled` in its rpm database, the
 * `available` rpms in /srv/sa-repo with their createrepo_c metadata cached as dnf5 caches it and
 * listed for the stand-in dnf (by NEVRA and by NEVR), accounts files, and the stand-in as
 * /usr/bin/dnf.
 */
export function makeFedoraRoot(
  work: string,
  root: string,
  preinstalled: BuiltRpm[],
  available: BuiltRpm[],
  standIn: string,
): void {
  for (const d of ['etc/rpm', 'usr/lib/rpm', 'usr/bin', 'tmp', 'var/tmp', 'srv/sa-repo', 'etc/sa-standin'])
    fs.mkdirSync(join(root, d), { recursive: true });
  fs.copyFileSync('/usr/bin/rpm', join(root, 'usr/bin/rpm'));
  for (const lib of run('ldd', ['/usr/bin/rpm']).match(/\/\S+/g) ?? []) {
    fs.mkdirSync(join(root, lib, '..'), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), join(root, lib));
  }
  for (const f of ['rpmrc', 'macros']) fs.copyFileSync(join('/usr/lib/rpm', f), join(root, 'usr/lib/rpm', f));
  fs.writeFileSync(join(root, 'etc/rpm/macros'), '%_dbpath /var/lib/rpm\n');
  fs.writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  fs.copyFileSync(standIn, join(root, 'usr/bin/dnf'));
  fs.chmodSync(join(root, 'usr/bin/dnf'), 0o755);
  run('rpm', [
    '--root',
    root,
    '--define',
    '_dbpath /var/lib/rpm',
    '--nodeps',
    '--noscripts',
    '-i',
    ...preinstalled.map((r) => r.file),
  ]);
  const lines: string[] = [];
  for (const r of available) {
    const base = r.file.split('/').pop() as string;
    fs.copyFileSync(r.file, join(root, 'srv/sa-repo', base));
    lines.push(
      `${r.name}-${r.version}.${r.arch} /srv/sa-repo/${base}`,
      `${r.name}-${r.version} /srv/sa-repo/${base}`,
    );
  }
  fs.writeFileSync(join(root, 'etc/sa-standin/repository'), `${lines.join('\n')}\n`);
  const repo = join(work, 'createrepo');
  fs.mkdirSync(repo, { recursive: true });
  for (const r of available) fs.copyFileSync(r.file, join(repo, r.file.split('/').pop() as string));
  run('createrepo_c', ['--quiet', '--no-database', repo]);
  fs.cpSync(join(repo, 'repodata'), join(root, 'var/cache/libdnf5/sa-repo-0123456789abcdef/repodata'), {
    recursive: true,
  });
}

/** apk's Q1 checksum: `Q1` + base64 of the SHA-1 of the content. */
export const q1 = (data: string | Buffer): string => `Q1${createHash('sha1').update(data).digest('base64')}`;

/**
 * The Alpine-like root: two installed packages with correct `Z:` checksums, their APKINDEX
 * (GNU tar + gzip) cached in /var/cache/apk as `apk update` leaves it, and the stand-in apk
 * (when given) as /sbin/apk accepting exactly those two versions.
 */
export function makeAlpineRoot(work: string, root: string, standIn: string | undefined): void {
  const files: [string, string][] = [
    ['bin/sa-box', '#!/bin/sh\necho box\n'],
    ['etc/sa-box.conf', 'a=1\n'],
    ['usr/lib/sa/data', 'data\n'],
  ];
  for (const [p, c] of files) {
    fs.mkdirSync(join(root, p, '..'), { recursive: true });
    fs.writeFileSync(join(root, p), c);
  }
  fs.chmodSync(join(root, 'bin/sa-box'), 0o755);
  fs.mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
  fs.writeFileSync(
    join(root, 'lib/apk/db/installed'),
    [
      `C:${q1('sa-box control')}`,
      'P:sa-box',
      'V:1.36.1-r29',
      'A:x86_64',
      'o:sa-box',
      'F:bin',
      'R:sa-box',
      'a:0:0:755',
      `Z:${q1('#!/bin/sh\necho box\n')}`,
      'F:etc',
      'R:sa-box.conf',
      `Z:${q1('a=1\n')}`,
      '',
      `C:${q1('apk-tools control')}`,
      'P:apk-tools',
      'V:2.14.4-r0',
      'A:x86_64',
      'F:usr/lib/sa',
      'R:data',
      `Z:${q1('data\n')}`,
      '',
    ].join('\n'),
  );
  fs.writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  const index = [
    ['sa-box', '1.36.1-r29', 'sa-box control', 'sa-box'],
    ['apk-tools', '2.14.4-r0', 'apk-tools control', 'apk-tools'],
    ['apk-tools-doc', '2.14.4-r0', 'apk-tools-doc control', 'apk-tools'],
  ]
    .map(
      ([p, v, c, o]) =>
        `C:${q1(c as string)}\nP:${p}\nV:${v}\nA:x86_64\nS:12345\nI:45056\nT:test package\n` +
        `U:https://example.org/\nL:MIT\no:${o}\nm:Jane Maintainer <jane@example.org>\nt:1717070480\n` +
        `c:3d0d5a8f7b1d8d0c7e2d84c1f2c0b5d1d1d0e3a7\nD:so:libc.musl-x86_64.so.1\n`,
    )
    .join('\n');
  const dir = join(work, 'apkindex');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(join(dir, 'DESCRIPTION'), 'v3.20.3-140-g0123456789a');
  fs.writeFileSync(join(dir, 'APKINDEX'), index);
  const tar = spawnSync('tar', [
    '-c',
    '-f',
    '-',
    '--owner=0',
    '--group=0',
    '-C',
    dir,
    'DESCRIPTION',
    'APKINDEX',
  ]);
  assert.equal(tar.status, 0);
  fs.mkdirSync(join(root, 'var/cache/apk'), { recursive: true });
  fs.writeFileSync(join(root, 'var/cache/apk/APKINDEX.2c4ac24e.tar.gz'), gzipSync(tar.stdout));
  if (standIn !== undefined) {
    fs.mkdirSync(join(root, 'sbin'), { recursive: true });
    fs.copyFileSync(standIn, join(root, 'sbin/apk'));
    fs.chmodSync(join(root, 'sbin/apk'), 0o755);
    fs.mkdirSync(join(root, 'etc/sa-standin'), { recursive: true });
    fs.writeFileSync(join(root, 'etc/sa-standin/repository'), 'sa-box=1.36.1-r29\napk-tools=2.14.4-r0\n');
  }
}
