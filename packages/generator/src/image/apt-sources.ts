import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { KeyError, PathError, readKeyFile, TrustedKeyring, type RootDir } from '@sysattest/core';
import { z } from 'zod';
import { GeneratorError } from '../errors.js';

/**
 * Extra apt sources of a platform image: Debian's snapshot archive (versions the live archive
 * dropped) and third-party repositories (a vendor's packages). They are written into the image as
 * apt's own configuration, so apt keeps the whole trust chain: it verifies each `InRelease`
 * against the source's keyring and each downloaded .deb against the SHA-256 of the signed
 * `Packages` index; nothing is downloaded by name and trusted. Pinned at priority 100 (like
 * backports): an extra source never replaces the image's packages on a refresh, it is used only
 * for the exact versions a generation asks for.
 *
 * The operator's file (`image refresh --sources FILE`):
 * ```json
 * { "sources": [
 *   { "name": "snapshot-20240210", "kind": "snapshot",
 *     "uri": "http://snapshot.example/archive/debian/20240210T000000Z/",
 *     "suites": ["bookworm"], "components": ["main"] },
 *   { "name": "vendor", "kind": "repository", "uri": "https://apt.vendor.example/debian",
 *     "suites": ["stable"], "components": ["main"], "signedBy": "/etc/keys/vendor.asc" } ] }
 * ```
 * A snapshot is checked with the distribution's own archive keyring inside the image unless
 * `signedBy` names another key; its date comes from the `YYYYMMDDTHHMMSSZ` in its URI (or
 * `snapshotDate`). A repository needs `signedBy`: an armored OpenPGP public key file.
 */

export const SOURCES_DIR = '/etc/apt/sources.list.d';
export const KEYRINGS_DIR = '/etc/apt/keyrings';
export const PREFERENCES_DIR = '/etc/apt/preferences.d';
/** What the catalog reads back to tell which index came from which extra source. */
export const SOURCES_RECORD = '/etc/sysattest/apt-sources.json';
const FILE_PREFIX = 'sysattest-';
const MAX_SOURCES_FILE = 64 * 1024;
const MAX_SOURCES = 32;

/** The distribution's archive keyring inside the image, by distro (snapshots default to it). */
export const DISTRIBUTION_KEYRINGS: Readonly<Record<string, string>> = {
  debian: '/usr/share/keyrings/debian-archive-keyring.gpg',
  ubuntu: '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
};

const SNAPSHOT_STAMP = /\/(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\/?$/;
const token = (what: string) =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+~/-]{0,99}$/, `${what}: letters, digits and . _ + ~ / - only`);

const sourceSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and - only'),
    kind: z.enum(['snapshot', 'repository']),
    uri: z
      .string()
      .max(1000)
      .regex(/^https?:\/\/[^\s"'\\]+$/, 'an http:// or https:// URI without spaces or quotes'),
    suites: z.array(token('suite')).min(1).max(16),
    components: z.array(token('component')).min(1).max(32),
    signedBy: z.string().min(1).max(4096).optional(),
    snapshotDate: z.iso.datetime({ offset: false }).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.kind === 'repository' && s.signedBy === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['signedBy'],
        message: 'a repository needs its signing key file',
      });
    }
    if (s.kind === 'snapshot' && s.snapshotDate === undefined && !SNAPSHOT_STAMP.test(s.uri)) {
      ctx.addIssue({
        code: 'custom',
        path: ['snapshotDate'],
        message: 'a snapshot needs its date: a URI ending in /YYYYMMDDTHHMMSSZ/ or snapshotDate',
      });
    }
  });

const sourcesFileSchema = z
  .strictObject({ sources: z.array(sourceSchema).max(MAX_SOURCES) })
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    for (const [i, s] of f.sources.entries()) {
      if (seen.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: 'used twice' });
      seen.add(s.name);
    }
  });

export type AptSourceSpec = z.infer<typeof sourceSchema>;

/** What the image records about each extra source (no host paths, keys are in the image). */
export interface RecordedSource {
  name: string;
  kind: 'snapshot' | 'repository';
  uri: string;
  suites: string[];
  /** Snapshots: the archive's date (ISO UTC). */
  snapshotDate?: string;
}

const recordSchema = z.strictObject({
  sources: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
        kind: z.enum(['snapshot', 'repository']),
        uri: z.string().max(1000),
        suites: z.array(token('suite')).min(1).max(16),
        snapshotDate: z.iso.datetime({ offset: false }).optional(),
      }),
    )
    .max(MAX_SOURCES),
});

function invalid(message: string): GeneratorError {
  return new GeneratorError('INVALID_ARGUMENT', message);
}

/** Reads and validates an operator's sources file; each repository's key is read and checked. */
export async function loadSourcesFile(file: string): Promise<AptSourceSpec[]> {
  let text: string;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw invalid(`--sources ${file}: not a regular file`);
    if (st.size > MAX_SOURCES_FILE) throw invalid(`--sources ${file}: larger than ${MAX_SOURCES_FILE} bytes`);
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof GeneratorError) throw e;
    throw invalid(
      `--sources ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw invalid(`--sources ${file}: not JSON (${(e as Error).message})`);
  }
  const parsed = sourcesFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(`--sources ${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return parsed.data.sources;
}

/** A source's date of snapshot, from `snapshotDate` or the stamp at the end of its URI. */
export function snapshotDateOf(s: AptSourceSpec): string | undefined {
  if (s.kind !== 'snapshot') return undefined;
  if (s.snapshotDate !== undefined) return s.snapshotDate.replace(/\.\d+Z$/, 'Z');
  const m = SNAPSHOT_STAMP.exec(s.uri)!;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
}

/** The files one source puts into the image: name in the image → content. */
export function renderSource(s: AptSourceSpec, distro: string, armoredKey?: string): Map<string, string> {
  const files = new Map<string, string>();
  let keyring: string;
  if (armoredKey !== undefined) {
    keyring = `${KEYRINGS_DIR}/${FILE_PREFIX}${s.name}.asc`;
    files.set(keyring, armoredKey.endsWith('\n') ? armoredKey : `${armoredKey}\n`);
  } else {
    const own = DISTRIBUTION_KEYRINGS[distro];
    if (own === undefined)
      throw invalid(`source ${s.name}: give signedBy (no archive keyring known for ${distro})`);
    keyring = own;
  }
  const lines = [
    `# sysattest-generator: ${s.kind} ${s.name}`,
    'Types: deb',
    `URIs: ${s.uri}`,
    `Suites: ${s.suites.join(' ')}`,
    `Components: ${s.components.join(' ')}`,
    `Signed-By: ${keyring}`,
    // A snapshot's Release files carry the Valid-Until of their day: long past by design.
    ...(s.kind === 'snapshot' ? ['Check-Valid-Until: no'] : []),
  ];
  files.set(`${SOURCES_DIR}/${FILE_PREFIX}${s.name}.sources`, `${lines.join('\n')}\n`);
  files.set(
    `${PREFERENCES_DIR}/${FILE_PREFIX}${s.name}`,
    `# sysattest-generator: used only for the exact versions a generation asks for\n` +
      `Package: *\nPin: origin "${new URL(s.uri).hostname}"\nPin-Priority: 100\n`,
  );
  return files;
}

/** The record the image keeps (SOURCES_RECORD), read back by the catalog. */
export function renderRecord(sources: readonly AptSourceSpec[]): string {
  const record: RecordedSource[] = sources.map((s) => ({
    name: s.name,
    kind: s.kind,
    uri: s.uri,
    suites: s.suites,
    ...(s.kind === 'snapshot' ? { snapshotDate: snapshotDateOf(s) } : {}),
  }));
  return `${JSON.stringify({ sources: record }, null, 2)}\n`;
}

/** Every file the extra sources put into the image, keys read from the operator's files. */
export async function sourceFiles(
  sources: readonly AptSourceSpec[],
  distro: string,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const s of sources) {
    const key = s.signedBy === undefined ? undefined : await readSourceKey(s);
    for (const [p, text] of renderSource(s, distro, key)) files.set(p, text);
  }
  files.set(SOURCES_RECORD, renderRecord(sources));
  return files;
}

async function readSourceKey(s: AptSourceSpec): Promise<string> {
  const file = s.signedBy as string;
  try {
    const text = await readKeyFile(file);
    if (!text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
      throw invalid(`source ${s.name}: ${file} is not an armored OpenPGP public key`);
    }
    await TrustedKeyring.fromArmored(text);
    return text;
  } catch (e) {
    if (e instanceof GeneratorError) throw e;
    const why = e instanceof KeyError ? e.message : `cannot read its key ${file}: ${(e as Error).message}`;
    throw invalid(`source ${s.name}: ${why}`);
  }
}

/** The command (no shell) that removes the image's previous extra sources. */
export const REMOVE_SOURCES_COMMAND = [
  'find',
  SOURCES_DIR,
  KEYRINGS_DIR,
  PREFERENCES_DIR,
  path.dirname(SOURCES_RECORD),
  '-maxdepth',
  '1',
  '(',
  '-name',
  `${FILE_PREFIX}*`,
  '-o',
  '-name',
  path.basename(SOURCES_RECORD),
  ')',
  '-type',
  'f',
  '-delete',
];

/** The extra sources an image records, read through its mount; none when it has no record. */
export function readRecordedSources(root: RootDir): RecordedSource[] {
  let text: string;
  try {
    text = root.readFile(SOURCES_RECORD, MAX_SOURCES_FILE).toString('utf8');
  } catch (e) {
    if (e instanceof PathError && e.code === 'NOT_FOUND') return [];
    throw new GeneratorError(
      'CATALOG_FAILED',
      `cannot read ${SOURCES_RECORD} in the image: ${(e as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GeneratorError('CATALOG_FAILED', `${SOURCES_RECORD} in the image is not JSON`);
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) {
    throw new GeneratorError(
      'CATALOG_FAILED',
      `${SOURCES_RECORD} in the image: ${parsed.error.issues[0]!.message}`,
    );
  }
  return parsed.data.sources;
}

/**
 * The prefix apt gives the list files of `uri` + `dists/<suite>` under var/lib/apt/lists (apt's
 * URItoFileName: no scheme or credentials, reserved characters %-quoted, `/` becomes `_`).
 */
export function aptListPrefix(uri: string, suite: string): string {
  const noScheme = uri.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^/@]*@/, '');
  const base = noScheme.endsWith('/') ? noScheme : `${noScheme}/`;
  const full = `${base}dists/${suite}`;
  const quoted = [...full]
    .map((c) => (`\\|{}[]<>"^~_=!@#$%^&*`.includes(c) ? `%${c.charCodeAt(0).toString(16)}` : c))
    .join('');
  return quoted.replaceAll('/', '_');
}
