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
 * It also holds what the generator's and the client's rpm/apk tests share (the client's import it
 * from the generator's dist): spec texts and `rpmbuild`, `rpm --root`, accounts files, apk packages
 * written with their installed database, and the image record of an imported rootfs.
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
import type { PlatformImage } from '../image/state.js';

/** Runs a command that must succeed (LC_ALL=C); its stdout. */
export function run(cmd: string, args: readonly string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, {
    ...opts,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A tool the tests need, or an error that says which Debian package provides it. */
export function requireTool(tool: string, debianPackage: string): void {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `these tests need ${tool} (apt-get install ${debianPackage}): ${r.error?.message ?? r.stderr}`,
    );
  }
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

/** The text of a small spec file (Summary `t`, License MIT); `files` are the %files lines. */
export function specText(o: {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  noarch?: boolean;
  description?: string;
  install: string[];
  files: string[];
}): string {
  return [
    '',
    `Name: ${o.name}`,
    `Version: ${o.version}`,
    `Release: ${o.release}`,
    ...(o.epoch === undefined ? [] : [`Epoch: ${o.epoch}`]),
    'Summary: t',
    'License: MIT',
    ...(o.noarch === true ? ['BuildArch: noarch'] : []),
    '%description',
    o.description ?? 't',
    '%install',
    ...o.install,
    '%files',
    ...o.files,
    '',
  ].join('\n');
}

/**
 * Builds the binary rpm(s) of a spec file's text with `rpmbuild -bb` in `work` (no debuginfo,
 * no post-install processing such as stripping), SHA-256 file digests unless told otherwise
 * (rpm's `_binary_filedigest_algorithm`: 8 SHA-256, 10 SHA-512, 1 MD5); the paths of the rpms made.
 */
export function rpmbuild(work: string, name: string, spec: string, digestAlgorithm = 8): string[] {
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
    '--define',
    `_binary_filedigest_algorithm ${digestAlgorithm}`,
    file,
  ]);
  const out: string[] = [];
  for (const d of fs.readdirSync(join(top, 'RPMS')))
    for (const f of fs.readdirSync(join(top, 'RPMS', d))) out.push(join(top, 'RPMS', d, f));
  return out;
}

/** rpms of these specs (name → spec body), built with rpmbuild (SHA-256 file digests). */
export function buildRpms(work: string, specs: Record<string, string>): BuiltRpm[] {
  const out: BuiltRpm[] = [];
  for (const [name, spec] of Object.entries(specs))
    for (const rpm of rpmbuild(work, name, spec)) {
      const q = run('rpm', [
        '-qp',
        '--qf',
        '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}',
        rpm,
      ]);
      const [n, v, a] = q.split('\t') as [string, string, string];
      out.push({ name: n, version: v, arch: a, file: rpm });
    }
  return out;
}

/** `rpm --root ROOT --define '_dbpath DBPATH' --nodeps ARGS…`: installs, erases, edits the database. */
export function rpmAt(root: string, dbpath: string, args: readonly string[]): string {
  return run('rpm', ['--root', root, '--define', `_dbpath ${dbpath}`, '--nodeps', ...args]);
}

/** A small root's accounts files (owners are named from the root's own files). */
export function writeAccounts(root: string, shell = '/bin/sh'): void {
  fs.mkdirSync(join(root, 'etc'), { recursive: true });
  fs.writeFileSync(join(root, 'etc/passwd'), `root:x:0:0:root:/root:${shell}\n`);
  fs.writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
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
  writeAccounts(root);
  fs.copyFileSync(standIn, join(root, 'usr/bin/dnf'));
  fs.chmodSync(join(root, 'usr/bin/dnf'), 0o755);
  rpmAt(root, '/var/lib/rpm', ['--noscripts', '-i', ...preinstalled.map((r) => r.file)]);
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

/** A path of an apk package: a file (its content) or a symlink (its target); `mode` for its `a:` line. */
export interface ApkPath {
  name: string;
  content: string;
  mode?: number;
  symlink?: true;
}

/** An `F:` directory of an apk package; `mode` for its `M:` line. */
export interface ApkDir {
  path: string;
  mode?: number;
  files?: ApkPath[];
}

/** A package of an Alpine-like root, as `lib/apk/db/installed` records it (owner root). */
export interface ApkPackage {
  /** The `C:` checksum. */
  checksum: string;
  name: string;
  version: string;
  arch: string;
  origin?: string;
  dirs: ApkDir[];
}

/** The package's record in `lib/apk/db/installed`, with the `Z:` checksum of every path. */
export function apkRecord(p: ApkPackage): string {
  const lines = [`C:${p.checksum}`, `P:${p.name}`, `V:${p.version}`, `A:${p.arch}`];
  if (p.origin !== undefined) lines.push(`o:${p.origin}`);
  for (const d of p.dirs) {
    lines.push(`F:${d.path}`);
    if (d.mode !== undefined) lines.push(`M:0:0:${d.mode.toString(8)}`);
    for (const f of d.files ?? []) {
      lines.push(`R:${f.name}`);
      if (f.mode !== undefined) lines.push(`a:0:0:${f.mode.toString(8)}`);
      lines.push(`Z:${q1(f.content)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the packages' directories and paths under `root`, and their installed database. */
export function writeApkPackages(root: string, packages: ApkPackage[]): void {
  for (const p of packages)
    for (const d of p.dirs) {
      fs.mkdirSync(join(root, d.path), { recursive: true });
      if (d.mode !== undefined) fs.chmodSync(join(root, d.path), d.mode);
      for (const f of d.files ?? []) {
        const file = join(root, d.path, f.name);
        if (f.symlink === true) fs.symlinkSync(f.content, file);
        else fs.writeFileSync(file, f.content);
        if (f.mode !== undefined && f.symlink !== true) fs.chmodSync(file, f.mode);
      }
    }
  fs.mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
  fs.writeFileSync(join(root, 'lib/apk/db/installed'), packages.map(apkRecord).join('\n'));
}

/** sa-box's script, as the Alpine-like roots install it. */
export const SA_BOX_SCRIPT: ApkPath = { name: 'sa-box', content: '#!/bin/sh\necho box\n', mode: 0o755 };
/** sa-box's bin directory: the script, a setuid file and a symlink to the script. */
export const SA_BOX_BIN: ApkDir = {
  path: 'bin',
  files: [
    SA_BOX_SCRIPT,
    { name: 'sa-ping', content: 'ping', mode: 0o4711 },
    { name: 'sa-sh', content: 'sa-box', mode: 0o777, symlink: true },
  ],
};
/** sa-box's configuration file under /etc. */
export const SA_BOX_ETC: ApkDir = { path: 'etc', files: [{ name: 'sa-box.conf', content: 'a=1\n' }] };
/** A directory with its own mode (0555). */
export const VAR_EMPTY: ApkDir = { path: 'var/empty', mode: 0o555 };
/** apk-tools' data file. */
export const SA_DATA: ApkDir = { path: 'usr/lib/sa', files: [{ name: 'data', content: 'data\n' }] };

/**
 * The Alpine-like root: two installed packages with correct `Z:` checksums, their APKINDEX
 * (GNU tar + gzip) cached in /var/cache/apk as `apk update` leaves it, and the stand-in apk
 * (when given) as /sbin/apk accepting exactly those two versions.
 */
export function makeAlpineRoot(work: string, root: string, standIn: string | undefined): void {
  writeApkPackages(root, [
    {
      checksum: q1('sa-box control'),
      name: 'sa-box',
      version: '1.36.1-r29',
      arch: 'x86_64',
      origin: 'sa-box',
      dirs: [{ path: 'bin', files: [SA_BOX_SCRIPT] }, SA_BOX_ETC],
    },
    {
      checksum: q1('apk-tools control'),
      name: 'apk-tools',
      version: '2.14.4-r0',
      arch: 'x86_64',
      dirs: [SA_DATA],
    },
  ]);
  writeAccounts(root);
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

/** The record the image fleet keeps for an image imported from a rootfs tarball (`source`). */
export function rootfsImage(
  platform: string,
  tag: string,
  imageId: string,
  source: { path: string; bytes: number },
): PlatformImage {
  return {
    platform,
    tag,
    imageId,
    digest: null,
    architecture: 'amd64',
    builtAt: new Date().toISOString(),
    refreshedAt: null,
    generation: 1,
    packageCount: null,
    source: { kind: 'rootfs', ...source },
    history: [],
  };
}
