/**
 * The catalog of a dnf image from its own repository metadata: the `repomd.xml` and `primary`
 * files dnf downloaded into its cache (dnf5: /var/cache/libdnf5, dnf4: /var/cache/dnf) when the
 * image was refreshed. dnf checked them (repomd signature where the repository has one, the
 * primary file's checksum against repomd); this reads them from the host through the mounted
 * root, checks the primary file's checksum against repomd.xml again, and keeps, for the
 * platform's architecture and `noarch`, each package's name, epoch:version-release, source rpm,
 * archive size and SHA-256. Everything read is bounded; gzip is read here, zstd, xz and zchunk
 * through the host's `zstd`, `xz` and `unzck` when present.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { rpmVersionScheme, type CatalogPackage, type RootDir } from '@sysattest/core';

/** Where dnf5 and dnf4 keep each repository's metadata, one `<repoid>-<hash>` directory each. */
export const DNF_CACHE_DIRS = ['/var/cache/libdnf5', '/var/cache/dnf'] as const;

export const REPODATA_LIMITS = {
  repomdBytes: 1024 * 1024,
  /** Compressed primary file (Fedora 41's main repository: ~20 MB compressed). */
  primaryBytes: 256 * 1024 * 1024,
  /** Uncompressed primary XML (Fedora 41's main repository: ~150 MB). */
  primaryXmlBytes: 512 * 1024 * 1024,
} as const;

export class RepodataError extends Error {}

export interface RepomdPrimary {
  /** `repodata/…-primary.xml.gz`, relative to the repository directory. */
  href: string;
  checksum: { type: string; hex: string };
  /** repomd's `<timestamp>` of the primary file, seconds since the epoch. */
  timestamp?: number;
}

/** repomd.xml: where the primary file is and its checksum (plain `primary` before `primary_zck`). */
export function parseRepomd(xml: string): RepomdPrimary {
  const blocks = [...xml.matchAll(/<data\s+type="([a-z_]+)"\s*>([\s\S]*?)<\/data>/g)];
  const block = blocks.find((b) => b[1] === 'primary') ?? blocks.find((b) => b[1] === 'primary_zck');
  if (block === undefined) throw new RepodataError('repomd.xml has no primary data');
  const body = block[2] as string;
  const href = /<location\s+href="([^"]+)"/.exec(body)?.[1];
  const checksum = /<checksum\s+type="([a-z0-9]+)"\s*>\s*([0-9a-f]+)\s*<\/checksum>/.exec(body);
  if (href === undefined || checksum === null) {
    throw new RepodataError('repomd.xml: the primary entry has no location or checksum');
  }
  if (!/^repodata\/[A-Za-z0-9._-]+$/.test(href)) {
    throw new RepodataError(`repomd.xml: unexpected primary location ${JSON.stringify(href.slice(0, 120))}`);
  }
  const ts = /<timestamp>\s*(\d{1,12})\s*<\/timestamp>/.exec(body)?.[1];
  return {
    href,
    checksum: { type: checksum[1] as string, hex: checksum[2] as string },
    ...(ts !== undefined ? { timestamp: Number(ts) } : {}),
  };
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function unescapeXml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e] as string);
}

const NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;

/** `name-version-release.src.rpm` → name and version-release. */
function sourceOf(srpm: string): { name: string; versionRelease: string } | undefined {
  const m = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(srpm);
  return m ? { name: m[1] as string, versionRelease: `${m[2]}-${m[3]}` } : undefined;
}

/**
 * The packages of a primary.xml for `arch` and `noarch` (multilib and source packages are other
 * platforms' business). The source version carries the binary's epoch (a source rpm's file name
 * has none, and a spec gives both the same). A package whose fields are invalid, or whose
 * checksum is not SHA-256 (very old repositories), is left out with a warning.
 */
export function parsePrimary(xml: string, arch: string): { packages: CatalogPackage[]; warnings: string[] } {
  const packages: CatalogPackage[] = [];
  const warnings: string[] = [];
  let n = 0;
  for (const m of xml.matchAll(/<package\s+type="rpm"\s*>([\s\S]*?)<\/package>/g)) {
    n++;
    const b = m[1] as string;
    const name = unescapeXml(/<name>([^<]*)<\/name>/.exec(b)?.[1] ?? '');
    const pkgArch = /<arch>([^<]*)<\/arch>/.exec(b)?.[1] ?? '';
    if (pkgArch !== arch && pkgArch !== 'noarch') continue;
    const v = /<version\s+epoch="(\d*)"\s+ver="([^"]*)"\s+rel="([^"]*)"\s*\/>/.exec(b);
    const checksum = /<checksum\s+type="([a-z0-9]+)"[^>]*>([0-9a-f]+)<\/checksum>/.exec(b);
    const size = /<size\s+package="(\d{1,15})"/.exec(b)?.[1];
    const href = /<location\s+(?:xml:base="[^"]*"\s+)?href="([^"]+)"/.exec(b)?.[1];
    const srpm = unescapeXml(/<rpm:sourcerpm>([^<]*)<\/rpm:sourcerpm>/.exec(b)?.[1] ?? '');
    const epoch = v && v[1] !== '' && v[1] !== '0' ? `${v[1]}:` : '';
    const version = v ? `${epoch}${unescapeXml(v[2] as string)}-${unescapeXml(v[3] as string)}` : '';
    const what = `package ${n} (${JSON.stringify(name.slice(0, 80))} ${JSON.stringify(version.slice(0, 80))})`;
    if (!NAME.test(name) || name.length > 256 || v === null || !rpmVersionScheme.isValid(version)) {
      warnings.push(`${what}: invalid name or version, left out`);
      continue;
    }
    if (checksum === null || checksum[1] !== 'sha256' || (checksum[2] as string).length !== 64) {
      warnings.push(`${what}: no SHA-256 checksum (${checksum?.[1] ?? 'none'}), left out`);
      continue;
    }
    if (size === undefined) {
      warnings.push(`${what}: no package size, left out`);
      continue;
    }
    const source = sourceOf(srpm);
    const sourceVersion = source ? `${epoch}${source.versionRelease}` : version;
    packages.push({
      name,
      version,
      architecture: pkgArch,
      source:
        source && NAME.test(source.name) && rpmVersionScheme.isValid(sourceVersion)
          ? { name: source.name, version: sourceVersion }
          : { name, version },
      size: Number(size),
      sha256: checksum[2] as string,
      ...(href !== undefined && href.length <= 1000 ? { filename: unescapeXml(href) } : {}),
    });
  }
  return { packages, warnings };
}

/** The host tool that decompresses a primary file of this name, or undefined for gzip/none. */
function decompressor(href: string): string[] | undefined {
  if (href.endsWith('.zst')) return ['zstd', '-dc'];
  if (href.endsWith('.xz')) return ['xz', '-dc'];
  if (href.endsWith('.zck')) return ['unzck', '--stdout'];
  return undefined;
}

function decompress(data: Buffer, href: string): Buffer {
  const max = REPODATA_LIMITS.primaryXmlBytes;
  if (href.endsWith('.gz')) {
    try {
      return gunzipSync(data, { maxOutputLength: max });
    } catch (e) {
      throw new RepodataError(
        `${href}: not a gzip file, or larger than ${max} bytes: ${(e as Error).message}`,
      );
    }
  }
  const tool = decompressor(href);
  if (tool === undefined) return data;
  const [cmd, ...args] = tool as [string, ...string[]];
  const r = spawnSync(cmd, args, { input: data, maxBuffer: max, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error !== undefined) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RepodataError(
      missing
        ? `${href}: reading it needs \`${cmd}\` on this host, which is not installed`
        : `${href}: ${cmd} failed: ${r.error.message}`,
    );
  }
  if (r.status !== 0) {
    throw new RepodataError(`${href}: ${cmd} failed: ${r.stderr.toString('utf8').trim().slice(0, 300)}`);
  }
  return r.stdout;
}

export interface DnfCatalog {
  packages: CatalogPackage[];
  sources: { name: string; date?: string }[];
  warnings: string[];
}

/**
 * Every repository dnf cached under the root, read as above and merged (a package offered by two
 * repositories appears once). Throws RepodataError when no repository metadata is cached (the
 * image was not refreshed) or when a repository's primary file does not match its repomd.xml.
 */
export function readDnfCatalog(root: RootDir, arch: string): DnfCatalog {
  const out: DnfCatalog = { packages: [], sources: [], warnings: [] };
  const seen = new Set<string>();
  for (const cacheDir of DNF_CACHE_DIRS) {
    if (!root.exists(cacheDir)) continue;
    const entries = fs
      .readdirSync(root.resolve(cacheDir, { followFinal: true }), { withFileTypes: true })
      .filter((d) => d.isDirectory() && /^[A-Za-z0-9._:-]+$/.test(d.name))
      .map((d) => d.name)
      .sort();
    for (const dir of entries) {
      const repoDir = `${cacheDir}/${dir}`;
      if (!root.exists(`${repoDir}/repodata/repomd.xml`)) continue;
      const repomd = parseRepomd(
        root.readFile(`${repoDir}/repodata/repomd.xml`, REPODATA_LIMITS.repomdBytes).toString('utf8'),
      );
      const file = `${repoDir}/${repomd.href}`;
      if (!root.exists(file)) {
        out.warnings.push(
          `${dir}: ${repomd.href} named by repomd.xml is not in the cache, repository left out`,
        );
        continue;
      }
      const compressed = root.readFile(file, REPODATA_LIMITS.primaryBytes);
      if (!['sha256', 'sha512', 'sha384', 'sha224'].includes(repomd.checksum.type)) {
        throw new RepodataError(`${file}: repomd.xml gives an unsupported ${repomd.checksum.type} checksum`);
      }
      const actual = createHash(repomd.checksum.type).update(compressed).digest('hex');
      if (actual !== repomd.checksum.hex) {
        throw new RepodataError(`${file}: its ${repomd.checksum.type} does not match repomd.xml`);
      }
      const parsed = parsePrimary(decompress(compressed, repomd.href).toString('utf8'), arch);
      out.warnings.push(...parsed.warnings.map((w) => `${dir}: ${w}`));
      for (const p of parsed.packages) {
        const k = `${p.name} ${p.architecture} ${p.version}`;
        if (seen.has(k)) continue;
        seen.add(k);
        out.packages.push(p);
      }
      // The repository id is the directory name without dnf's `-<16 hex>` suffix.
      out.sources.push({
        name: dir.replace(/-[0-9a-f]{16}$/, ''),
        ...(repomd.timestamp !== undefined
          ? { date: new Date(repomd.timestamp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') }
          : {}),
      });
    }
  }
  if (out.sources.length === 0) {
    throw new RepodataError(
      `no dnf repository metadata cached in ${DNF_CACHE_DIRS.join(' or ')} (refresh the image: dnf makecache)`,
    );
  }
  return out;
}
