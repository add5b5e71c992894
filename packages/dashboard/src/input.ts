/**
 * What a request may carry, read once and bounded: query parameters, form fields and path
 * parameters. Anything out of bounds is a DashboardError (400, or 404 for a path that names
 * nothing), shown on the error page.
 */
import { DashboardError, type PageRequest } from './backend.js';

export type Query = Record<string, string | string[] | undefined>;
export type Form = Record<string, string>;

/** Rows per page of the paged lists. */
export const PAGE_SIZE = 50;
/** Longest host name accepted in a URL (a DNS name; the server's own bound may be tighter). */
export const MAX_HOST_NAME = 253;
const MAX_OFFSET = 10_000_000;
const REPORT_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** A query parameter's first value, at most `max` characters ('' when absent). */
export function one(q: Query, key: string, max: number): string {
  const v = q[key];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return '';
  if (s.length > max) throw new DashboardError(400, `${key} is longer than ${max} characters`);
  return s;
}

export function offsetOf(q: Query, key = 'offset'): number {
  const s = one(q, key, 12);
  if (s === '') return 0;
  if (!/^[0-9]+$/.test(s) || Number(s) > MAX_OFFSET) {
    throw new DashboardError(400, `offset must be a whole number from 0 to ${MAX_OFFSET}`);
  }
  return Number(s);
}

/** The page the query's `offset` asks for, of `limit` rows. */
export function pageOf(q: Query, limit: number): PageRequest {
  return { offset: offsetOf(q), limit };
}

/** A form field of at most `max` characters; a required one must not be blank. */
export function field(f: Form, key: string, max: number, required = true): string {
  const v = f[key];
  if (typeof v !== 'string' || (required && v.trim() === '')) {
    if (!required) return '';
    throw new DashboardError(400, `the form has no ${key}`);
  }
  if (v.length > max) throw new DashboardError(400, `${key} is longer than ${max} characters`);
  return v;
}

/** Is `v` one of `options`? */
export function oneOf<T extends string>(v: string, options: readonly T[]): v is T {
  return (options as readonly string[]).includes(v);
}

/** A query parameter that must be one of `options` (at most `max` characters), if given. */
export function choice<T extends string>(
  q: Query,
  key: string,
  max: number,
  options: readonly T[],
): T | undefined {
  const v = one(q, key, max);
  if (v === '') return undefined;
  if (!oneOf<T>(v, options)) throw new DashboardError(400, `${key} must be one of ${options.join(', ')}`);
  return v;
}

/** Forms post application/x-www-form-urlencoded; a repeated field keeps its first value. */
export function parseForm(body: string): Form {
  const form: Form = {};
  for (const [k, v] of new URLSearchParams(body)) if (!(k in form)) form[k] = v;
  return form;
}

export function hostName(s: string): string {
  if (s.length === 0 || s.length > MAX_HOST_NAME) throw new DashboardError(404, 'no such host');
  return s;
}

/** A job's or a token's id in a path. */
export function recordId(s: string, what: 'job' | 'token'): number {
  if (!/^[1-9][0-9]{0,14}$/.test(s)) throw new DashboardError(404, `no such ${what}`);
  return Number(s);
}

export function manifestDigest(s: string): string {
  if (!/^[0-9a-f]{64}$/.test(s))
    throw new DashboardError(404, 'no such manifest (a digest is 64 hex digits)');
  return s;
}

/** A host report's id, from its file name (`ID` or `ID.json`). */
export function reportId(file: string): string {
  const id = file.replace(/\.json$/, '');
  if (!REPORT_ID.test(id)) throw new DashboardError(404, 'no such report (a report id is a UUID)');
  return id;
}

export function keyFingerprint(s: string): string {
  if (!/^[0-9A-Fa-f]{16,64}$/.test(s)) throw new DashboardError(404, 'no such key');
  return s;
}

export function packageName(s: string): string {
  if (s.length === 0 || s.length > 200)
    throw new DashboardError(400, 'a package name has 1 to 200 characters');
  return s;
}
