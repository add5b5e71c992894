import type { ManifestFile, Page, PageRequest } from '@sysattest/dashboard';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** One manifest entry (already verified at upload) in the dashboard's shape. */
function toFile(e: Record<string, unknown>): ManifestFile {
  const digest = e.distroDigest as { algorithm?: unknown; hex?: unknown } | undefined;
  const f: ManifestFile = { path: str(e.path) ?? '?', type: str(e.type) ?? '?' };
  const copy = <K extends keyof ManifestFile>(k: K, v: ManifestFile[K] | undefined): void => {
    if (v !== undefined) f[k] = v;
  };
  copy('mode', str(e.mode));
  copy('user', str(e.user));
  copy('group', str(e.group));
  copy('uid', int(e.uid));
  copy('gid', int(e.gid));
  copy('size', int(e.size));
  copy('sha256', str(e.sha256));
  copy('target', str(e.target));
  copy('linkTo', str(e.linkTo));
  copy('capabilities', str(e.capabilities));
  copy('divertedTo', str(e.divertedTo));
  if (e.conffile === true) f.conffile = true;
  if (e.distroDigestMismatch === true) f.distroDigestMismatch = true;
  if (digest !== undefined && typeof digest.hex === 'string')
    f.distroDigest = `${String(digest.algorithm)}:${digest.hex}`;
  if (int(e.major) !== undefined) f.device = `${int(e.major)}:${int(e.minor) ?? 0}`;
  return f;
}

/** A manifest's entries as the pages show them; verified at upload, read defensively all the same. */
export function manifestFiles(bytes: Uint8Array): ManifestFile[] {
  const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { entries?: unknown };
  const entries = Array.isArray(doc.entries) ? doc.entries : [];
  return entries.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null).map(toFile);
}

/** The files whose path contains `filter` (all for ''), one page of them. */
export function filesPage(
  files: readonly ManifestFile[],
  filter: string,
  p: PageRequest,
): Page<ManifestFile> {
  return sliceOf(filter === '' ? files : files.filter((f) => f.path.includes(filter)), p);
}

/** A page cut from a whole list held in memory. */
export function sliceOf<T>(all: readonly T[], p: PageRequest): Page<T> {
  return {
    items: all.slice(p.offset, p.offset + p.limit),
    offset: p.offset,
    limit: p.limit,
    total: all.length,
    hasMore: p.offset + p.limit < all.length,
  };
}

/** Parsed manifest entries, kept for a few recently viewed manifests (paging re-reads them). */
export class EntryCache {
  readonly #items = new Map<string, ManifestFile[]>();
  #entries = 0;
  /** About 200 bytes an entry: ~40 MB at most (a single larger manifest is kept alone). */
  constructor(readonly maxEntries = 200_000) {}

  get(digest: string): ManifestFile[] | undefined {
    const hit = this.#items.get(digest);
    if (hit !== undefined) {
      this.#items.delete(digest);
      this.#items.set(digest, hit);
    }
    return hit;
  }

  set(digest: string, files: ManifestFile[]): void {
    this.#items.set(digest, files);
    this.#entries += files.length;
    for (const [k, v] of this.#items) {
      if (this.#entries <= this.maxEntries || k === digest) break;
      this.#items.delete(k);
      this.#entries -= v.length;
    }
  }
}
