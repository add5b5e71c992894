import { z } from 'zod';
import {
  fingerprint,
  packageName as name,
  platformId,
  sha256,
  shortText as text,
  timestamp,
  version,
} from '../signed/fields.js';

/**
 * Manifest v1: what one package version installs on one platform, as the generator saw it in a
 * fresh container. This schema is the single definition: the TypeScript types are inferred from
 * it, and every manifest is checked against it before anything reads it.
 *
 * Bounds exist so that a hostile manifest cannot make a verifier allocate without limit; they are
 * far above anything Debian, Fedora or Alpine ship (the largest Debian packages own ~60,000 paths).
 */
export const MANIFEST_SCHEMA_ID = 'sysattest.manifest';
export const MANIFEST_SCHEMA_VERSION = 1;

export const MANIFEST_LIMITS = {
  /** Largest manifest accepted, in bytes of canonical JSON. */
  maxBytes: 64 * 1024 * 1024,
  /** Most paths in one manifest. */
  maxEntries: 500_000,
  /** Linux PATH_MAX. */
  maxPathLength: 4096,
  maxNameLength: 256,
  maxTextLength: 1024,
  /** Most diversions one package makes (Debian's busiest divert a handful). */
  maxDiversions: 10_000,
} as const;

/**
 * An absolute, normalised path: starts with `/`, no empty, `.` or `..` components, no trailing
 * slash (except `/` itself), no NUL or newline.
 */
export const absolutePath = z
  .string()
  .min(1)
  .max(MANIFEST_LIMITS.maxPathLength)
  .refine(
    (p) =>
      p === '/' ||
      (p.startsWith('/') &&
        !p.endsWith('/') &&
        !/[\0\n]/.test(p) &&
        p
          .slice(1)
          .split('/')
          .every((c) => c !== '' && c !== '.' && c !== '..')),
    'must be an absolute normalised path',
  );
/** Permission bits including setuid (04000), setgid (02000) and sticky (01000), as 4 octal digits. */
const mode = z.string().regex(/^[0-7]{4}$/, 'must be 4 octal digits like 0755 or 4755');
const id = z.int().min(0).max(0xffffffff);
const ownerName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^\s:/]+$/, 'must be a user or group name');

const distroDigest = z.strictObject({
  algorithm: z.enum(['md5', 'sha1', 'sha256', 'sha512']),
  hex: z.string().regex(/^[0-9a-f]{32,128}$/, 'must be lower-case hex'),
});

/** Fields every path has, whatever its type. */
const common = {
  path: absolutePath,
  mode,
  uid: id,
  gid: id,
  /** Names as the platform image's /etc/passwd and /etc/group give them (absent if unknown). */
  user: ownerName.optional(),
  group: ownerName.optional(),
  /** The distribution marks this path as a configuration file (dpkg conffiles, rpm %config). */
  conffile: z.literal(true).optional(),
  /**
   * dpkg-divert: the package ships `path`, but the file was diverted and lives at `divertedTo`
   * in the image the manifest was made in.
   */
  divertedTo: absolutePath.optional(),
};

/** What the distribution's own database says about a file's content, and whether it agrees. */
const distroFields = {
  distroDigest: distroDigest.optional(),
  /** Present (true) when the distro digest disagrees with what the generator hashed. Never dropped. */
  distroDigestMismatch: z.literal(true).optional(),
};

const fileContent = {
  size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  sha256,
  /** Raw `security.capability` xattr, lower-case hex (absent when the file has none). */
  capabilities: z
    .string()
    .regex(/^([0-9a-f]{2}){1,64}$/, 'must be lower-case hex')
    .optional(),
};

/**
 * Why an `absent` entry is absent, as the package database of the generator's fresh container
 * (never the verified machine's) recorded it:
 * - `ghost`: rpm `%ghost`, the package owns the path but never ships it; whatever is there was
 *   made at run time, so a client excuses anything at that path;
 * - `not-installed`: rpm left the file out by design in the generator's install (documentation or
 *   languages excluded, a net-shared path, the other architecture's copy of a multilib file); the
 *   package does ship content for it, which this manifest cannot vouch for.
 */
export const ABSENT_REASONS = ['ghost', 'not-installed'] as const;
export type AbsentReason = (typeof ABSENT_REASONS)[number];

export const manifestEntrySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('file'), ...common, ...fileContent, ...distroFields }),
  /**
   * A regular file that shares its inode with other entries of the package; `linkTo` is the first
   * path (in sort order) of that group, which is itself a `file` entry. Content fields repeat so
   * each entry can be checked alone.
   */
  z.strictObject({
    type: z.literal('hardlink'),
    ...common,
    ...fileContent,
    ...distroFields,
    linkTo: absolutePath,
  }),
  z.strictObject({ type: z.literal('dir'), ...common }),
  z.strictObject({
    type: z.literal('symlink'),
    ...common,
    target: z
      .string()
      .min(1)
      .max(MANIFEST_LIMITS.maxPathLength)
      .refine((t) => !t.includes('\0'), 'no NUL'),
  }),
  z.strictObject({ type: z.enum(['chardev', 'blockdev']), ...common, major: id, minor: id }),
  z.strictObject({ type: z.enum(['fifo', 'socket']), ...common }),
  /**
   * The package database lists the path but a fresh install does not have it (a maintainer script
   * removed it, or the package never shipped it): a client must not expect it, and must not take it
   * as unowned either. `reason`, when the generator's own database gave one, says why; see
   * ABSENT_REASONS. Without it (every manifest made before it existed, every dpkg manifest), a path
   * that exists where the manifest says absent is unexpected.
   */
  z.strictObject({
    type: z.literal('absent'),
    path: absolutePath,
    conffile: z.literal(true).optional(),
    reason: z.enum(ABSENT_REASONS).optional(),
  }),
]);

/**
 * A dpkg diversion (dpkg-divert(1)) the package itself made: other packages' files shipped at
 * `from` are installed at `to`. Read from the diversions file of the generator's fresh container
 * after the install, keeping those whose diverting package is this manifest's package, so a
 * client honours a diversion on the machine it checks only when a verified manifest of the
 * diverting package declares it (a local `:` diversion, or one a package never makes, hides
 * nothing). Not to be confused with an entry's `divertedTo`: that is where another package's
 * diversion moved this package's own file.
 */
export const manifestDiversionSchema = z.strictObject({ from: absolutePath, to: absolutePath });

export const manifestSchema = z
  .strictObject({
    schema: z.literal(MANIFEST_SCHEMA_ID),
    schemaVersion: z.literal(MANIFEST_SCHEMA_VERSION),
    platform: platformId,
    package: z.strictObject({
      name,
      version,
      /** Must equal the platform's arch (`all` packages have `…/all` platforms). */
      architecture: name,
      source: z.strictObject({ name, version }),
    }),
    provenance: z.strictObject({
      /** When the generator made the manifest. */
      generatedAt: timestamp,
      generator: z.strictObject({ name: text, version: text }),
      /** The key the generator signs with; the signature must come from this key. */
      keyFingerprint: fingerprint,
      /** The container image the package was installed into. */
      image: z.strictObject({
        id: text,
        /** When the image's package lists were last refreshed. */
        refreshedAt: timestamp.optional(),
      }),
      /** The package manager that installed it, e.g. `apt 2.6.1`. */
      installer: text,
      /** Digest of the package archive installed (e.g. the .deb's SHA256 from the repository index). */
      archiveSha256: sha256.optional(),
    }),
    entries: z.array(manifestEntrySchema).max(MANIFEST_LIMITS.maxEntries),
    /**
     * The diversions this package made, sorted by `from` (code units); absent when it makes none
     * (never empty: one content, one encoding), so manifests made before the field existed keep
     * their bytes and still validate.
     */
    diversions: z.array(manifestDiversionSchema).min(1).max(MANIFEST_LIMITS.maxDiversions).optional(),
  })
  .superRefine((m, ctx) => {
    const arch = m.platform.split('/')[2];
    if (m.package.architecture !== arch) {
      ctx.addIssue({
        code: 'custom',
        path: ['package', 'architecture'],
        message: `is ${m.package.architecture} but the platform ${m.platform} is for ${arch}`,
      });
    }
    // Entries sorted by path (code units) and unique: one canonical order, and no path listed twice
    // with two different answers.
    const typeOf = new Map<string, ManifestEntryType>();
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i] as ManifestEntry;
      const prev = m.entries[i - 1];
      if (prev !== undefined && !(prev.path < e.path)) {
        ctx.addIssue({
          code: 'custom',
          path: ['entries', i, 'path'],
          message:
            prev.path === e.path
              ? `${e.path} is listed twice`
              : `${e.path} is out of order (entries are sorted by path)`,
        });
        break;
      }
      if (e.type === 'hardlink' && typeOf.get(e.linkTo) !== 'file') {
        ctx.addIssue({
          code: 'custom',
          path: ['entries', i, 'linkTo'],
          message: `${e.path} is a hard link of ${e.linkTo}, which is not an earlier file entry of this manifest`,
        });
      }
      typeOf.set(e.path, e.type);
    }
    checkDiversions(m.diversions ?? [], ctx);
  });

/**
 * Diversions sorted by `from` and each path in one diversion only, as dpkg keeps them: a path is
 * diverted once, never diverted to itself, and a divert-to path holds one diverted file.
 */
function checkDiversions(diversions: readonly ManifestDiversion[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, string>();
  for (let i = 0; i < diversions.length; i++) {
    const d = diversions[i] as ManifestDiversion;
    const prev = diversions[i - 1];
    if (prev !== undefined && !(prev.from < d.from)) {
      ctx.addIssue({
        code: 'custom',
        path: ['diversions', i, 'from'],
        message:
          prev.from === d.from
            ? `${d.from} is diverted twice`
            : `${d.from} is out of order (diversions are sorted by from)`,
      });
      return;
    }
    for (const key of ['from', 'to'] as const) {
      const p = d[key];
      const first = seen.get(p);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['diversions', i, key],
          message: `${p} is repeated: it is already the ${first} (a path is in one diversion only)`,
        });
        return;
      }
      seen.set(p, `${key} of diversion ${i}`);
    }
  }
}

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestEntry = z.infer<typeof manifestEntrySchema>;
export type ManifestEntryType = ManifestEntry['type'];
export type ManifestDiversion = z.infer<typeof manifestDiversionSchema>;
