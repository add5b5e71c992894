import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

/**
 * Test kit: a signed apt archive made with Debian's own tools and served over HTTP on loopback,
 * standing in for the archive snapshot service and third-party repositories that these machines
 * cannot reach. Packages are built with dpkg-deb, indexed with dpkg-scanpackages, the Release file
 * is written by apt-ftparchive and clear-signed by gpg into InRelease: what apt fetches from a real
 * archive. A container reaches it with `--network host`.
 */

export interface TestDeb {
  name: string;
  version: string;
  /** Path in the package → content; modes 0644 (0755 under /usr/bin). */
  files: Record<string, string>;
  depends?: string;
  /** A postinst maintainer script (`#!/bin/sh` and `set -e` are added). */
  postinst?: string;
}

/** Builds a .deb (architecture all, owned by root) into `outDir`; returns its path. */
export function buildDeb(outDir: string, deb: TestDeb): string {
  const tree = fs.mkdtempSync(path.join(outDir, `${deb.name}-tree-`));
  fs.mkdirSync(path.join(tree, 'DEBIAN'));
  const control = [
    `Package: ${deb.name}`,
    `Version: ${deb.version}`,
    'Architecture: all',
    'Maintainer: sysattest tests <tests@invalid>',
    ...(deb.depends ? [`Depends: ${deb.depends}`] : []),
    `Description: ${deb.name}, a package of the sysattest tests`,
  ];
  fs.writeFileSync(path.join(tree, 'DEBIAN', 'control'), `${control.join('\n')}\n`);
  if (deb.postinst !== undefined) {
    fs.writeFileSync(path.join(tree, 'DEBIAN', 'postinst'), `#!/bin/sh\nset -e\n${deb.postinst}\n`, {
      mode: 0o755,
    });
  }
  const md5sums: string[] = [];
  for (const [p, content] of Object.entries(deb.files)) {
    const file = path.join(tree, p);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    fs.chmodSync(file, p.startsWith('/usr/bin/') ? 0o755 : 0o644);
    md5sums.push(`${createHash('md5').update(content).digest('hex')}  ${p.slice(1)}`);
  }
  // As dh_md5sums writes it (these packages declare no conffiles).
  fs.writeFileSync(path.join(tree, 'DEBIAN', 'md5sums'), `${md5sums.join('\n')}\n`);
  const out = path.join(outDir, `${deb.name}_${deb.version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, out], { stdio: 'pipe' });
  fs.rmSync(tree, { recursive: true, force: true });
  return out;
}

/** A gpg home with one signing key (no passphrase); the armored public key for Signed-By. */
export interface ArchiveKey {
  home: string;
  publicKey: string;
  publicKeyFile: string;
}

export function archiveKey(dir: string, name: string): ArchiveKey {
  const home = fs.mkdtempSync(path.join(dir, 'gnupg-'));
  fs.chmodSync(home, 0o700);
  const gpg = (args: string[]) =>
    execFileSync('gpg', ['--homedir', home, '--batch', '--quiet', ...args], { stdio: 'pipe' });
  gpg(['--passphrase', '', '--quick-gen-key', `${name} <archive@invalid>`, 'rsa3072', 'sign', 'never']);
  const publicKey = gpg(['--armor', '--export']).toString('utf8');
  const publicKeyFile = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.asc`);
  fs.writeFileSync(publicKeyFile, publicKey);
  return { home, publicKey, publicKeyFile };
}

export interface ArchiveSpec {
  /** Directory of the archive under the served root (`archive/debian/20240210T000000Z`). */
  base: string;
  suite: string;
  component: string;
  origin: string;
  debs: string[];
  key: ArchiveKey;
}

/** Lays out a signed archive: pool/, dists/SUITE/{InRelease,Release,COMPONENT/binary-amd64/Packages}. */
export function writeArchive(servedRoot: string, spec: ArchiveSpec): void {
  const root = path.join(servedRoot, spec.base);
  const pool = path.join(root, 'pool', spec.component);
  fs.mkdirSync(pool, { recursive: true });
  for (const deb of spec.debs) fs.copyFileSync(deb, path.join(pool, path.basename(deb)));
  const dist = path.join(root, 'dists', spec.suite);
  const binary = path.join(dist, spec.component, 'binary-amd64');
  fs.mkdirSync(binary, { recursive: true });
  const packages = execFileSync('dpkg-scanpackages', ['--multiversion', `pool/${spec.component}`], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  fs.writeFileSync(path.join(binary, 'Packages'), packages);
  const release = execFileSync(
    'apt-ftparchive',
    [
      '-o',
      `APT::FTPArchive::Release::Origin=${spec.origin}`,
      '-o',
      `APT::FTPArchive::Release::Suite=${spec.suite}`,
      '-o',
      `APT::FTPArchive::Release::Codename=${spec.suite}`,
      '-o',
      'APT::FTPArchive::Release::Architectures=amd64 all',
      '-o',
      `APT::FTPArchive::Release::Components=${spec.component}`,
      'release',
      '.',
    ],
    { cwd: dist, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  fs.writeFileSync(path.join(dist, 'Release'), release);
  execFileSync(
    'gpg',
    [
      '--homedir',
      spec.key.home,
      '--batch',
      '--yes',
      '--clearsign',
      '-o',
      path.join(dist, 'InRelease'),
      path.join(dist, 'Release'),
    ],
    { stdio: 'pipe' },
  );
}

/** A static HTTP server on 127.0.0.1 over `root`; `replace` serves other bytes for some paths. */
export interface ArchiveServer {
  url: string;
  /** Request paths served so far. */
  requests: string[];
  replace: Map<string, Buffer>;
  close(): Promise<void>;
}

export async function serveArchive(root: string): Promise<ArchiveServer> {
  const requests: string[] = [];
  const replace = new Map<string, Buffer>();
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(urlPath);
    const swapped = replace.get(urlPath);
    const file = path.join(root, path.normalize(urlPath));
    if (
      swapped === undefined &&
      (!file.startsWith(`${root}/`) || !fs.existsSync(file) || !fs.statSync(file).isFile())
    ) {
      res.writeHead(404).end();
      return;
    }
    const body = swapped ?? fs.readFileSync(file);
    res.writeHead(200, { 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    replace,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
