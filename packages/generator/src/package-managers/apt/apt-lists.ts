import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  RootDir,
  isArchName,
  isPackageName,
  parseDeb822,
  validateDpkgVersion,
  type CatalogOrigin,
  type CatalogPackage,
  type Deb822Paragraph,
} from '@sysattest/core';
import { GeneratorError } from '../../errors.js';
import { aptListPrefix, readRecordedSources, type RecordedSource } from '../../image/apt-sources.js';

/**
 * Reads the repository indexes apt downloaded into an image (var/lib/apt/lists) after
 * `apt-get update`: apt has already checked each InRelease signature and each Packages file's
 * hash against it, so what is here is what the repositories signed. Read from the host through
 * the container's mount; nothing runs in the image.
 */

const LISTS_DIR = '/var/lib/apt/lists';
/** bookworm main amd64 uncompressed is ~45 MB; 256 MiB leaves room for big mirrors. */
const MAX_PACKAGES_FILE = 256 * 1024 * 1024;
const MAX_RELEASE_FILE = 16 * 1024 * 1024;

export interface AptSource {
  /** e.g. `Debian bookworm/main amd64`. */
  name: string;
  date?: string;
  validUntil?: string;
  /** Set for an extra source's index (snapshot archive, third-party repository). */
  origin?: CatalogOrigin;
}

export interface AptListsSnapshot {
  sources: AptSource[];
  /** Unsorted; one entry per name/arch/version (the first repository that offers it wins). */
  packages: CatalogPackage[];
  /** Things worth telling the operator (the same version with different archives, …). */
  warnings: string[];
}

interface ReleaseInfo {
  label: string;
  date?: string;
  validUntil?: string;
}

export function readAptLists(root: RootDir, arch: string): AptListsSnapshot {
  const listsHost = root.resolve(LISTS_DIR, { followFinal: true });
  let names: string[];
  try {
    names = fs.readdirSync(listsHost).sort();
  } catch (e) {
    throw new GeneratorError(
      'CATALOG_FAILED',
      `cannot read ${LISTS_DIR} in the image: ${(e as Error).message}`,
    );
  }
  const releases = new Map<string, ReleaseInfo>();
  for (const name of names) {
    const m = /^(.*)_(In)?Release$/.exec(name);
    if (!m) continue;
    const prefix = m[1] as string;
    if (releases.has(prefix)) continue; // InRelease and Release both present: same content
    releases.set(
      prefix,
      parseRelease(root.readFile(`${LISTS_DIR}/${name}`, MAX_RELEASE_FILE).toString('utf8'), name),
    );
  }

  const packageFiles = names.filter(
    (n) => n.endsWith(`_binary-${arch}_Packages`) || n.endsWith('_binary-all_Packages'),
  );
  if (packageFiles.length === 0) {
    const compressed = names.filter((n) => /_Packages\.(lz4|gz|xz|zst)$/.test(n));
    throw new GeneratorError(
      'CATALOG_FAILED',
      compressed.length > 0
        ? `the image keeps its package lists compressed (${compressed[0]}); run apt-get update with -o Acquire::GzipIndexes=false`
        : `no package lists for ${arch} in ${LISTS_DIR}: apt-get update has not run in this image`,
    );
  }

  const origins = originsByPrefix(readRecordedSources(root));
  const sources: AptSource[] = [];
  const byKey = new Map<string, CatalogPackage>();
  const warnings: string[] = [];
  // The distribution's own indexes first, then snapshots, then repositories: for a version several
  // offer, the catalog names the distribution's archive.
  const ranked = packageFiles
    .map((file) => ({ file, origin: originOf(file, origins) }))
    .sort((a, b) => originRank(a.origin) - originRank(b.origin));
  for (const { file, origin } of ranked) {
    const releasePrefix = [...releases.keys()]
      .filter((p) => file.startsWith(`${p}_`))
      .sort((a, b) => b.length - a.length)[0];
    if (releasePrefix === undefined) {
      throw new GeneratorError(
        'CATALOG_FAILED',
        `${file} has no Release file beside it: refusing an unsigned index`,
      );
    }
    const release = releases.get(releasePrefix) as ReleaseInfo;
    const component = file
      .slice(releasePrefix.length + 1)
      .replace(/_binary-[^_]+_Packages$/, '')
      .replaceAll('_', '/');
    const listArch = /_binary-([^_]+)_Packages$/.exec(file)?.[1] as string;
    sources.push({
      name: `${origin ? `${origin.name}: ` : ''}${release.label}/${component} ${listArch}`,
      ...(release.date ? { date: release.date } : {}),
      ...(release.validUntil ? { validUntil: release.validUntil } : {}),
      ...(origin ? { origin } : {}),
    });
    const text = root.readFile(`${LISTS_DIR}/${file}`, MAX_PACKAGES_FILE).toString('utf8');
    for (const p of parsePackagesIndex(text, file, arch)) {
      const key = `${p.name}\0${p.architecture}\0${p.version}`;
      const existing = byKey.get(key);
      if (existing === undefined) byKey.set(key, origin ? { ...p, origin: origin.name } : p);
      else if (existing.sha256 !== p.sha256) {
        warnings.push(
          `${p.name} ${p.version} (${p.architecture}) has different archives in two repositories; kept the first`,
        );
      }
    }
  }
  return { sources, packages: [...byKey.values()], warnings };
}

/** List-file prefix (apt's name for `uri/dists/suite`) → the extra source it belongs to. */
function originsByPrefix(recorded: readonly RecordedSource[]): Map<string, CatalogOrigin> {
  const out = new Map<string, CatalogOrigin>();
  for (const s of recorded) {
    const origin: CatalogOrigin = {
      name: s.name,
      kind: s.kind,
      ...(s.snapshotDate ? { snapshotDate: s.snapshotDate } : {}),
    };
    for (const suite of s.suites) out.set(aptListPrefix(s.uri, suite), origin);
  }
  return out;
}

function originOf(file: string, origins: Map<string, CatalogOrigin>): CatalogOrigin | undefined {
  let best: { prefix: string; origin: CatalogOrigin } | undefined;
  for (const [prefix, origin] of origins) {
    if (file.startsWith(`${prefix}_`) && (best === undefined || prefix.length > best.prefix.length)) {
      best = { prefix, origin };
    }
  }
  return best?.origin;
}

function originRank(origin: CatalogOrigin | undefined): number {
  if (origin === undefined) return 0;
  return origin.kind === 'snapshot' ? 1 : 2;
}

/** Parses a Debian `Packages` index into catalog entries for `arch` (plus `all`). */
export function parsePackagesIndex(text: string, file: string, arch: string): CatalogPackage[] {
  const out: CatalogPackage[] = [];
  for (const para of parseDeb822(text, file)) {
    const get = (f: string): string | undefined => para.fields.get(f)?.value;
    const where = `${file} line ${para.line}`;
    const name = required(para, 'package', where);
    const version = required(para, 'version', where);
    const architecture = required(para, 'architecture', where);
    if (!isPackageName(name)) throw bad(`invalid package name ${JSON.stringify(name)}`, where);
    if (!isArchName(architecture)) throw bad(`invalid architecture ${JSON.stringify(architecture)}`, where);
    try {
      validateDpkgVersion(version);
    } catch (e) {
      throw bad(`${name}: ${(e as Error).message}`, where);
    }
    if (architecture !== arch && architecture !== 'all') continue;
    const sha256 = required(para, 'sha256', where);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw bad(`${name}: SHA256 is not 64 hex digits`, where);
    const sizeText = required(para, 'size', where);
    if (!/^\d{1,15}$/.test(sizeText)) throw bad(`${name}: Size is not a number`, where);
    const source = parseSourceField(get('source'), name, version, where);
    const filename = get('filename');
    out.push({
      name,
      version,
      architecture,
      source,
      size: Number(sizeText),
      sha256,
      ...(filename ? { filename } : {}),
    });
  }
  return out;
}

/** `Source: name` or `Source: name (version)`; absent means the binary's own name and version. */
export function parseSourceField(
  field: string | undefined,
  name: string,
  version: string,
  where: string,
): { name: string; version: string } {
  if (field === undefined) return { name, version };
  const m = /^([a-z0-9][a-z0-9+.-]+)(?:\s+\(([^)\s]+)\))?$/.exec(field.trim());
  if (!m) throw bad(`${name}: invalid Source field ${JSON.stringify(field)}`, where);
  return { name: m[1] as string, version: m[2] ?? version };
}

/** Parses an InRelease (clear-signed) or Release file: the label and the dates a client needs. */
export function parseRelease(text: string, file: string): ReleaseInfo {
  const body = stripClearsign(text);
  const para = parseDeb822(body.endsWith('\n') ? body : `${body}\n`, file)[0];
  if (para === undefined) throw bad('empty Release file', file);
  const get = (f: string): string | undefined => para.fields.get(f)?.value.split('\n')[0]?.trim();
  const origin = get('origin') ?? 'unknown';
  const suite = get('codename') ?? get('suite') ?? path.basename(file);
  const date = get('date');
  const validUntil = get('valid-until');
  return {
    label: `${origin} ${suite}`,
    ...(date ? { date: releaseDate(date, file) } : {}),
    ...(validUntil ? { validUntil: releaseDate(validUntil, file) } : {}),
  };
}

/** RFC 2822 dates as Release files write them (`Sat, 09 Nov 2024 10:11:46 UTC`) → ISO UTC. */
function releaseDate(text: string, file: string): string {
  const ms = Date.parse(text.replace(/\bUTC$/, 'GMT'));
  if (Number.isNaN(ms)) throw bad(`invalid date ${JSON.stringify(text)}`, file);
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The signed text of a clear-signed message (RFC 4880 §7), dash-escaping undone. */
function stripClearsign(text: string): string {
  if (!text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) return text;
  const start = text.indexOf('\n\n');
  const end = text.indexOf('\n-----BEGIN PGP SIGNATURE-----');
  if (start < 0 || end < start) return '';
  return text
    .slice(start + 2, end + 1)
    .split('\n')
    .map((l) => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
}

function required(para: Deb822Paragraph, field: string, where: string): string {
  const v = para.fields.get(field)?.value.trim();
  if (!v) throw bad(`missing ${field} field`, where);
  return v;
}

function bad(message: string, where: string): GeneratorError {
  return new GeneratorError('CATALOG_FAILED', `${where}: ${message}`);
}
