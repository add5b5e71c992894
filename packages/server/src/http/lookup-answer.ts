import { Readable } from 'node:stream';
import type { LookupItemResult, LookupResult } from '../store/index.js';

/** One item as the API writes it: bytes in base64. */
function itemJson(r: LookupItemResult): unknown {
  if (r.status !== 'ok') return r;
  const { bytes, ...manifest } = r.manifest;
  return {
    ...r,
    manifest: { ...manifest, ...(bytes === undefined ? {} : { bytes: bytes.toString('base64') }) },
  };
}

/**
 * The lookup answer's JSON, written item by item as the socket takes it: one document's base64
 * text exists at a time, and each document's bytes are let go once written. (Building the whole
 * answer as one object and one string held the documents four to six times over.)
 */
function* answerChunks(result: LookupResult): Generator<Buffer> {
  const head = {
    platform: result.platform,
    ...(result.catalog === undefined ? {} : { catalog: result.catalog }),
    foreignCatalogs: result.foreignCatalogs,
  };
  yield Buffer.from(`${JSON.stringify(head).slice(0, -1)},"items":[`);
  const { items } = result;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as LookupItemResult;
    yield Buffer.from(`${i === 0 ? '' : ','}${JSON.stringify(itemJson(item))}`);
    if (item.status === 'ok') items[i] = { ...item, manifest: { digest: item.manifest.digest } };
  }
  const tail = result.documentsOmitted === undefined ? '' : `,"documentsOmitted":${result.documentsOmitted}`;
  yield Buffer.from(`]${tail}}`);
}

/** The answer of POST /v1/lookup as a stream of JSON (see answerChunks). */
export function lookupAnswerStream(result: LookupResult): Readable {
  return Readable.from(answerChunks(result), { objectMode: false });
}
