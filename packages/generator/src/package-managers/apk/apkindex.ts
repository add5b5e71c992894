/**
 * The catalog of an apk image (Alpine) from its own repository indexes: the `APKINDEX.*.tar.gz`
 * files `apk update` downloads (and checks against the keys in /etc/apk/keys) into
 * /var/cache/apk. An index file is a gzip stream (or two concatenated: the signature, then the
 * index) holding a tar with `DESCRIPTION` and `APKINDEX`; `APKINDEX` is text, one record per
 * package version separated by blank lines, one `X:value` field a line.
 *
 * An index records, per package, the size of the .apk (`S:`) and its `C:` checksum: `Q1` +
 * base64 SHA-1 of the package's control segment, not a SHA-256 of the file. Catalog entries
 * carry it as `apkChecksum` (the catalog schema's field for exactly this) and no `sha256`.
 *
 * Everything here reads untrusted bytes from an image: every size is capped, the tar headers
 * are checked (checksum, octal fields, entry types), the text must be UTF-8 and every line a
 * field; anything else is an ApkIndexError saying where. A record with an invalid name,
 * version, architecture, checksum or size is left out with a warning, as a dnf primary file's.
 * The signature is not checked again here (apk checked it when it downloaded the index).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { apkVersionScheme, type CatalogPackage, type RootDir } from '@sysattest/core';

/** Where apk keeps the indexes it downloaded (`/etc/apk/cache` is usually a link to the first). */
export const APK_INDEX_DIRS = ['/var/cache/apk', '/etc/apk/cache', '/lib/apk/db'] as const;

export const APKINDEX_LIMITS = {
  /** One compressed index file (Alpine's community repository: ~2.5 MB). */
  compressedBytes: 64 * 1024 * 1024,
  /** The uncompressed tar (community: ~12 MB). */
  tarBytes: 256 * 1024 * 1024,
  /** Tar entries in one index file (a real one has 3 or 4). */
  tarEntries: 64,
  /** DESCRIPTION member. */
  descriptionBytes: 4096,
  /** One line of APKINDEX (long `D:` lines of meta packages are a few KB). */
  lineBytes: 256 * 1024,
  /** Records in one APKINDEX. */
  records: 1_000_000,
  /** Index files read from one image. */
  files: 256,
} as const;

export class ApkIndexError extends Error {}

const NAME = /^[A-Za-z0-9][A-Za-z0-9+._~@-]*$/;
const ARCH = /^[a-z0-9_]+$/;
const CHECKSUM = /^(?:Q1[A-Za-z0-9+/]{27}=|Q2[A-Za-z0-9+/]{43}=)$/;
const DIGITS = /^\d{1,15}$/;

export interface TarMember {
  name: string;
  /** Seconds since the epoch, from the header (or a pax `mtime`). */
  mtime: number;
  data: Buffer;
}

function octal(header: Buffer, start: number, length: number, what: string, file: string): number {
  const field = header.subarray(start, start + length);
  if ((field[0] as number) & 0x80) {
    throw new ApkIndexError(`${file}: tar header ${what} in base-256 (a member larger than 8 GB)`);
  }
  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]{1,12}$/.test(text)) {
    throw new ApkIndexError(`${file}: tar header ${what} is not octal: ${JSON.stringify(text)}`);
  }
  return parseInt(text, 8);
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return (nul < 0 ? b : b.subarray(0, nul)).toString('utf8');
}

/** pax extended header records: `<len> key=value\n`; only `path` and `mtime` are used. */
function paxRecords(data: Buffer, file: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    const len = space < 0 ? NaN : Number(data.subarray(i, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= space - i || i + len > data.length) {
      throw new ApkIndexError(`${file}: malformed pax header record at byte ${i}`);
    }
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * The regular files of an uncompressed tar (ustar, GNU or pax). Concatenated tars without an
 * end-of-archive between them (apk's signature, then index) read as one. Ends at the first zero
 * block or the end of the data; a truncated member or a bad header checksum is an error.
 */
export function readTar(tar: Buffer, file: string): TarMember[] {
  const members: TarMember[] = [];
  let offset = 0;
  let entries = 0;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    if (++entries > APKINDEX_LIMITS.tarEntries) {
      throw new ApkIndexError(`${file}: more than ${APKINDEX_LIMITS.tarEntries} tar entries`);
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
    const recorded = octal(header, 148, 8, 'checksum', file);
    if (sum !== recorded) {
      throw new ApkIndexError(`${file}: tar header at byte ${offset} has a bad checksum (not a tar file?)`);
    }
    const size = octal(header, 124, 12, 'size', file);
    const type = String.fromCharCode(header[156] as number);
    const dataStart = offset + 512;
    const dataEnd = dataStart + size;
    if (dataEnd > tar.length) {
      throw new ApkIndexError(`${file}: tar member at byte ${offset} is truncated`);
    }
    const data = tar.subarray(dataStart, dataEnd);
    offset = dataStart + Math.ceil(size / 512) * 512;
    const magic = header.subarray(257, 262).toString('latin1');
    const prefix = magic === 'ustar' ? cString(header.subarray(345, 500)) : '';
    const headerName = (prefix ? `${prefix}/` : '') + cString(header.subarray(0, 100));
    switch (type) {
      case 'L':
        longName = cString(data);
        continue;
      case 'x':
        pax = paxRecords(data, file);
        continue;
      case 'g':
        continue;
      case '0':
      case '\0': {
        const name = pax.get('path') ?? longName ?? headerName;
        const paxMtime = Number(pax.get('mtime'));
        members.push({
          name: name.replace(/^\.\//, ''),
          mtime: Number.isFinite(paxMtime) ? Math.floor(paxMtime) : octal(header, 136, 12, 'mtime', file),
          data,
        });
        break;
      }
      case '5':
        break;
      default:
        throw new ApkIndexError(
          `${file}: unexpected tar entry type ${JSON.stringify(type)} for ${JSON.stringify(headerName.slice(0, 100))}`,
        );
    }
    longName = undefined;
    pax = new Map();
  }
  return members;
}

/** One package version of an APKINDEX. */
export interface ApkIndexPackage {
  name: string;
  version: string;
  arch: string;
  /** `C:` as written: `Q1` + base64 SHA-1 of the control segment. */
  checksum: string;
  /** `S:` size of the .apk in bytes. */
  size: number;
  /** `I:` installed size in bytes. */
  installedSize?: number;
  /** `o:` the origin (source) package. */
  origin?: string;
  /** `T:` */
  description?: string;
  /** `U:` */
  url?: string;
  /** `L:` */
  license?: string;
  /** `m:` */
  maintainer?: string;
  /** `t:` build time, seconds since the epoch. */
  buildTime?: number;
  /** `c:` the aports commit it was built from. */
  commit?: string;
  /** `D:` dependencies, as written. */
  depends: string[];
  /** `p:` provides, as written. */
  provides: string[];
}

/**
 * Parses APKINDEX text. Throws ApkIndexError (with the line number) for text that is not UTF-8,
 * a line that is not `X:value`, a line longer than the limit or too many records; a record
 * without a valid P/V/A/C/S, or with a field given twice, is left out with a warning.
 */
export function parseApkIndexText(
  bytes: Buffer,
  file: string,
): { packages: ApkIndexPackage[]; warnings: string[] } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ApkIndexError(`${file}: APKINDEX is not UTF-8 text`);
  }
  const packages: ApkIndexPackage[] = [];
  const warnings: string[] = [];
  let fields = new Map<string, string>();
  let duplicate: string | undefined;
  let recordLine = 0;
  let records = 0;
  const flush = () => {
    if (fields.size === 0) return;
    if (++records > APKINDEX_LIMITS.records) {
      throw new ApkIndexError(`${file}: more than ${APKINDEX_LIMITS.records} records`);
    }
    const where = `${file}: record at line ${recordLine}`;
    const r = checkRecord(fields, duplicate);
    if (typeof r === 'string') warnings.push(`${where}: ${r}, left out`);
    else packages.push(r);
    fields = new Map();
    duplicate = undefined;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '');
    if (line.length > APKINDEX_LIMITS.lineBytes) {
      throw new ApkIndexError(
        `${file}: line ${i + 1} is longer than ${APKINDEX_LIMITS.lineBytes} characters`,
      );
    }
    if (line === '') {
      flush();
      continue;
    }
    const m = /^([A-Za-z]):(.*)$/.exec(line);
    if (m === null) {
      throw new ApkIndexError(
        `${file}: line ${i + 1} is not a FIELD:value line: ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    if (fields.size === 0) recordLine = i + 1;
    const [, letter, value] = m as unknown as [string, string, string];
    if (fields.has(letter)) duplicate ??= letter;
    fields.set(letter, value);
  }
  flush();
  return { packages, warnings };
}

/** The package of a record, or why it is invalid. */
function checkRecord(f: Map<string, string>, duplicate: string | undefined): ApkIndexPackage | string {
  const name = f.get('P');
  const label = name === undefined ? 'no P: field' : JSON.stringify(name.slice(0, 80));
  if (duplicate !== undefined) return `${label}: field ${duplicate}: given twice`;
  if (name === undefined || !NAME.test(name) || name.length > 256) return `invalid package name ${label}`;
  const version = f.get('V');
  if (version === undefined || version.length > 256 || !apkVersionScheme.isValid(version)) {
    return `${label}: invalid version ${JSON.stringify((version ?? '(none)').slice(0, 80))}`;
  }
  const arch = f.get('A');
  if (arch === undefined || !ARCH.test(arch) || arch.length > 64) {
    return `${label}: invalid architecture ${JSON.stringify((arch ?? '(none)').slice(0, 80))}`;
  }
  const checksum = f.get('C');
  if (checksum === undefined || !CHECKSUM.test(checksum)) {
    return `${label}: invalid C: checksum ${JSON.stringify((checksum ?? '(none)').slice(0, 80))}`;
  }
  const size = f.get('S');
  if (size === undefined || !DIGITS.test(size)) {
    return `${label}: invalid S: size ${JSON.stringify((size ?? '(none)').slice(0, 80))}`;
  }
  for (const [letter, what] of [
    ['I', 'installed size'],
    ['t', 'build time'],
  ] as const) {
    const v = f.get(letter);
    if (v !== undefined && !DIGITS.test(v)) return `${label}: invalid ${letter}: ${what}`;
  }
  const origin = f.get('o');
  if (origin !== undefined && (!NAME.test(origin) || origin.length > 256)) {
    return `${label}: invalid o: origin ${JSON.stringify(origin.slice(0, 80))}`;
  }
  const num = (letter: string) => (f.has(letter) ? Number(f.get(letter)) : undefined);
  const text = (letter: string) => f.get(letter);
  const list = (letter: string) => (f.get(letter) ?? '').split(' ').filter(Boolean);
  const out: ApkIndexPackage = {
    name,
    version,
    arch,
    checksum,
    size: Number(size),
    depends: list('D'),
    provides: list('p'),
  };
  const optional = {
    installedSize: num('I'),
    origin,
    description: text('T'),
    url: text('U'),
    license: text('L'),
    maintainer: text('m'),
    buildTime: num('t'),
    commit: text('c'),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(out, { [k]: v });
  return out;
}

export interface ApkIndexFile {
  /** DESCRIPTION, e.g. `v3.20.3-140-g0123456789`. */
  description?: string;
  /** The APKINDEX member's mtime: when the repository built the index. */
  date?: string;
  /** Names of the signature members (`.SIGN.RSA.<key>.rsa.pub`), empty if unsigned. */
  signatures: string[];
  packages: ApkIndexPackage[];
  warnings: string[];
}

/** One `APKINDEX.tar.gz`, from its compressed bytes. */
export function parseApkIndexArchive(compressed: Buffer, file: string): ApkIndexFile {
  if (compressed.length > APKINDEX_LIMITS.compressedBytes) {
    throw new ApkIndexError(`${file}: larger than ${APKINDEX_LIMITS.compressedBytes} bytes`);
  }
  let tar: Buffer;
  try {
    // Several gzip members (signature, index) decompress as one stream.
    tar = gunzipSync(compressed, { maxOutputLength: APKINDEX_LIMITS.tarBytes });
  } catch (e) {
    throw new ApkIndexError(
      `${file}: not a gzip file, or larger than ${APKINDEX_LIMITS.tarBytes} bytes uncompressed: ${(e as Error).message}`,
    );
  }
  const members = readTar(tar, file);
  const index = members.filter((m) => m.name === 'APKINDEX');
  if (index.length !== 1) {
    throw new ApkIndexError(
      `${file}: ${index.length === 0 ? 'no APKINDEX member' : 'more than one APKINDEX member'} ` +
        `(members: ${members.map((m) => m.name).join(', ') || 'none'})`,
    );
  }
  const desc = members.find((m) => m.name === 'DESCRIPTION');
  if (desc !== undefined && desc.data.length > APKINDEX_LIMITS.descriptionBytes) {
    throw new ApkIndexError(`${file}: DESCRIPTION is larger than ${APKINDEX_LIMITS.descriptionBytes} bytes`);
  }
  const description = desc?.data.toString('utf8').trim();
  const entry = index[0] as TarMember;
  const parsed = parseApkIndexText(entry.data, file);
  return {
    // Printable ASCII, short: it becomes part of a catalog source's name.
    ...(description ? { description: description.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) } : {}),
    ...(entry.mtime > 0
      ? { date: new Date(entry.mtime * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') }
      : {}),
    signatures: members.filter((m) => m.name.startsWith('.SIGN.')).map((m) => m.name),
    packages: parsed.packages,
    warnings: parsed.warnings,
  };
}

export interface ApkCatalog {
  packages: CatalogPackage[];
  sources: { name: string; date?: string }[];
  warnings: string[];
}

/** The cached index files of a root: `APKINDEX.<hex>.tar.gz` or `APKINDEX.tar.gz`, sorted. */
function indexFiles(root: RootDir): string[] {
  const files: string[] = [];
  const seen = new Set<string>();
  for (const dir of APK_INDEX_DIRS) {
    if (!root.exists(dir)) continue;
    let host: string;
    try {
      host = root.resolve(dir, { followFinal: true });
    } catch {
      continue;
    }
    if (seen.has(host)) continue;
    seen.add(host);
    let names: string[];
    try {
      names = fs
        .readdirSync(host, { withFileTypes: true })
        .filter((d) => d.isFile() && /^APKINDEX(?:\.[0-9a-f]{1,64})?\.tar\.gz$/.test(d.name))
        .map((d) => d.name)
        .sort();
    } catch {
      continue;
    }
    for (const n of names) files.push(path.posix.join(root.canonical(dir), n));
  }
  if (files.length > APKINDEX_LIMITS.files) {
    throw new ApkIndexError(`more than ${APKINDEX_LIMITS.files} APKINDEX files cached`);
  }
  return files;
}

/**
 * Every repository index cached under the root, merged: for the platform's architecture (and
 * `noarch`), each package version once, with its size, `C:` checksum and origin (the source
 * package, same version: an APKINDEX names no other). Throws ApkIndexError when no index is
 * cached (the image was made without `apk update`, or with `--no-cache`) or one is unreadable.
 */
export function readApkCatalog(root: RootDir, arch: string): ApkCatalog {
  const out: ApkCatalog = { packages: [], sources: [], warnings: [] };
  const seen = new Map<string, string>();
  const files = indexFiles(root);
  if (files.length === 0) {
    throw new ApkIndexError(
      `no APKINDEX cached in ${APK_INDEX_DIRS.join(', ')} (refresh the image's indexes: apk update)`,
    );
  }
  for (const file of files) {
    const parsed = parseApkIndexArchive(root.readFile(file, APKINDEX_LIMITS.compressedBytes), file);
    out.warnings.push(...parsed.warnings);
    let otherArch = 0;
    for (const p of parsed.packages) {
      if (p.arch !== arch && p.arch !== 'noarch') {
        otherArch++;
        continue;
      }
      const k = `${p.name} ${p.arch} ${p.version}`;
      const had = seen.get(k);
      if (had !== undefined) {
        if (had !== p.checksum) {
          out.warnings.push(
            `${file}: ${p.name} ${p.version} has checksum ${p.checksum}, another index ${had}; the first kept`,
          );
        }
        continue;
      }
      seen.set(k, p.checksum);
      const origin = p.origin ?? p.name;
      out.packages.push({
        name: p.name,
        version: p.version,
        architecture: p.arch,
        source: { name: origin, version: p.version },
        size: p.size,
        apkChecksum: p.checksum,
      });
    }
    if (otherArch > 0) out.warnings.push(`${file}: ${otherArch} package(s) for other architectures left out`);
    out.sources.push({
      name: `${path.posix.basename(file)}${parsed.description ? ` ${parsed.description}` : ''}`,
      ...(parsed.date !== undefined ? { date: parsed.date } : {}),
    });
  }
  return out;
}
