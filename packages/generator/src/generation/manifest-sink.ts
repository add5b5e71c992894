import * as path from 'node:path';
import {
  manifestFileName,
  signManifest,
  writeFileAtomic,
  type Manifest,
  type SignedDocument,
  type SigningKey,
} from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import type { BuiltManifest } from './manifest-builder.js';
import { failureOf, recordFailure, type GenerationEvent, type GenerationOutcome } from './results.js';

/** One manifest as generation hands it over: its content (for its identity) and the signed bytes. */
export interface SignedManifest {
  manifest: Manifest;
  signed: SignedDocument;
}

/**
 * Where generation hands each signed manifest, in memory, as soon as it is signed: a directory
 * (`generate`: DirectorySink) or the server (`work`: the worker's UploadSink). `put` resolves to
 * where the manifest is kept, for results and progress; a throw fails that manifest alone, with
 * the error's code (OUTPUT_FAILED for a write that failed).
 */
export interface ManifestSink {
  put(m: SignedManifest): Promise<string>;
}

/** Where a run's manifests go: a sink, or a directory (shorthand for a DirectorySink on it). */
export type ManifestOutput = { sink: ManifestSink } | { outDir: string };

export function sinkOf(output: ManifestOutput): ManifestSink {
  return 'sink' in output ? output.sink : new DirectorySink(output.outDir);
}

/**
 * `<dir>/<distro>/<release>/<arch>/<name>_<version>_<arch>.json` and its `.asc` beside it, each
 * written atomically; the signature first, so a manifest file is never there without it.
 */
export class DirectorySink implements ManifestSink {
  constructor(readonly dir: string) {}

  async put({ manifest, signed }: SignedManifest): Promise<string> {
    const file = path.join(this.dir, ...manifest.platform.split('/'), manifestFileName(manifest.package));
    await writeAtomically(`${file}.asc`, signed.signature);
    await writeAtomically(file, signed.bytes);
    return file;
  }
}

/** Writes a file atomically (mode 0644); OUTPUT_FAILED naming it when that fails. */
export async function writeAtomically(file: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(file, data, { mode: 0o644 });
  } catch (e) {
    throw new GeneratorError('OUTPUT_FAILED', `cannot write ${file}: ${(e as Error).message}`, { cause: e });
  }
}

export interface HandOver {
  key: SigningKey;
  sink: ManifestSink;
  into: GenerationOutcome;
  emit: (e: GenerationEvent) => void;
}

/**
 * Builds one package's manifest, signs it and puts it in the sink, recording it in the outcome
 * with its events; a manifest that cannot be built, signed or kept is that package's failure
 * (the error's code), never the batch's. The built manifest, when it was kept.
 */
export async function handOver(
  pkg: { name: string; version: string; architecture: string },
  request: string,
  build: () => BuiltManifest,
  to: HandOver,
): Promise<BuiltManifest | undefined> {
  const { name, version, architecture } = pkg;
  try {
    const built = build();
    const signed = await signManifest(built.manifest, to.key);
    const file = await to.sink.put({ manifest: built.manifest, signed });
    to.into.manifests.push({ name, version, architecture, file });
    to.emit({ kind: 'manifest', name, version, architecture, entries: built.manifest.entries.length, file });
    if (built.digestMismatches.length > 0) {
      to.emit({ kind: 'digest-mismatch', name, version, paths: built.digestMismatches });
    }
    return built;
  } catch (e) {
    recordFailure(to.into, to.emit, { request, name, version, ...failureOf(e) });
    return undefined;
  }
}
