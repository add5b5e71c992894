import type { ManifestSummary } from '@sysattest/dashboard';
import { reading } from '../context.js';
import type { ReadContext } from './read-context.js';

export async function manifestSummary(
  ctx: ReadContext,
  digest: string,
): Promise<ManifestSummary | undefined> {
  const r = await reading(() =>
    ctx.db
      .selectFrom('manifests as m')
      .innerJoin('platforms as p', 'p.id', 'm.platform_id')
      .select(['m.digest', 'p.name as platform', 'm.name', 'm.version', 'm.arch'])
      .select(['m.source_name', 'm.source_version', 'm.generated_at', 'm.signed_at'])
      .select(['m.signer_fingerprint', 'm.ingested_at', 'm.entry_count', 'm.file_count'])
      .where('m.digest', '=', digest)
      .executeTakeFirst(),
  );
  if (r === undefined) return undefined;
  return {
    digest: r.digest,
    platform: r.platform,
    name: r.name,
    version: r.version,
    arch: r.arch,
    source: { name: r.source_name, version: r.source_version },
    generatedAt: r.generated_at,
    signedAt: r.signed_at,
    signerFingerprint: r.signer_fingerprint,
    ingestedAt: r.ingested_at,
    entryCount: r.entry_count,
    fileCount: r.file_count,
  };
}
