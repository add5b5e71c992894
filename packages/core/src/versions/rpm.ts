/**
 * rpm package versions: `[epoch:]version-release` (Fedora, RHEL and its rebuilds, SUSE,
 * CBL-Mariner…).
 *
 * `compare` orders exactly as rpm 4.18's `rpm.vercmp()` (rpmverParse() + rpmverCmp(), with
 * rpmvercmp() on each part) — the oracle the tests check against. The rules:
 *  - split: the epoch is the leading digits when a `:` follows them (an empty epoch, `:1.0`, is 0);
 *    the release is what follows the *last* `-` after the epoch; the version is the rest;
 *  - a missing epoch is 0; epochs are compared with rpmvercmp too (so `01` = `1`);
 *  - when both have a release the releases are compared; when only one has a release (even an
 *    empty one, `1.0-`), that one is newer;
 *  - rpmvercmp: characters other than ASCII letters, digits, `~` and `^` only separate segments;
 *    `~` sorts before anything, even the end of the string (`1.0~rc1` < `1.0`); `^` sorts after
 *    the end of the string but before anything else (`1.0` < `1.0^git1` < `1.0.1`); a numeric
 *    segment beats an alphabetic one; numbers compare by value of any length (leading zeros
 *    ignored); letters compare by ASCII (`A` < `a`); when all segments are equal, the string with
 *    segments left over is newer (`1.0` < `1.0.0`), and separators alone do not count
 *    (`1.0` = `1..0` = `1.0.`).
 *
 * | input                                  | rpm                      | compare | validate |
 * |----------------------------------------|--------------------------|---------|----------|
 * | empty string                           | "invalid version" error  | throws  | throws   |
 * | control character (NUL…)               | cannot be passed         | throws  | throws   |
 * | no release (`1.0`), empty part (`1:-1`) | compares (above)         | orders  | throws   |
 * | a character rpmbuild refuses in Version | compares                 | orders  | throws   |
 * |  or Release (anything but letters,     |                          |         |          |
 * |  digits and `._+~^`), a second `-`     |                          |         |          |
 * | longer than 256 characters             | compares                 | orders  | throws   |
 */
import { VersionError } from '../errors.js';
import type { VersionScheme } from './scheme.js';

/** An rpm EVR split into its parts; `epoch` and `release` are undefined when absent. */
export interface RpmVersion {
  readonly epoch: string | undefined;
  readonly version: string;
  readonly release: string | undefined;
}

/** Longest EVR `validate` accepts (real ones are well under 100 characters). */
export const RPM_VERSION_MAX_LENGTH = 256;

function show(v: string): string {
  return v.length > 80 ? `${JSON.stringify(v.slice(0, 80))}… (${v.length} characters)` : JSON.stringify(v);
}

function invalid(v: string, problem: string): VersionError {
  return new VersionError('INVALID_VERSION', `invalid rpm version ${show(v)}: ${problem}`);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

const TILDE = 0x7e;
const CARET = 0x5e;
const END = -1;

/** The character code at `i`, or END past the end. */
function at(s: string, i: number): number {
  return i < s.length ? s.charCodeAt(i) : END;
}

/**
 * rpmvercmp(): orders two version (or release, or epoch) strings. Returns -1, 0 or 1.
 */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Skip separators: anything but letters, digits, ~ and ^.
    for (let c = at(a, i); c !== END && !isAlpha(c) && !isDigit(c) && c !== TILDE && c !== CARET;)
      c = at(a, ++i);
    for (let c = at(b, j); c !== END && !isAlpha(c) && !isDigit(c) && c !== TILDE && c !== CARET;)
      c = at(b, ++j);
    const ca = at(a, i);
    const cb = at(b, j);
    // ~ sorts before everything, the end of the string included.
    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++;
      j++;
      continue;
    }
    // ^ sorts after the end of the string, before everything else.
    if (ca === CARET || cb === CARET) {
      if (ca === END) return -1;
      if (cb === END) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === END || cb === END) break;
    // One segment: a run of digits, or a run of letters, of the type `a` starts with.
    const numeric = isDigit(ca);
    const same = numeric ? isDigit : isAlpha;
    let ei = i;
    while (ei < a.length && same(a.charCodeAt(ei))) ei++;
    let ej = j;
    while (ej < b.length && same(b.charCodeAt(ej))) ej++;
    // `b` has a segment of the other type here: numbers are newer than letters.
    if (ej === j) return numeric ? 1 : -1;
    let sa = a.slice(i, ei);
    let sb = b.slice(j, ej);
    if (numeric) {
      sa = sa.replace(/^0+/, '');
      sb = sb.replace(/^0+/, '');
      if (sa.length !== sb.length) return sa.length > sb.length ? 1 : -1;
    }
    if (sa !== sb) return sa < sb ? -1 : 1; // ASCII only here: UTF-16 order is byte order
    i = ei;
    j = ej;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** rpmverParse(): splits an EVR the way rpm does, without checking anything. */
export function splitRpmVersion(evr: string): RpmVersion {
  let s = 0;
  while (s < evr.length && isDigit(evr.charCodeAt(s))) s++;
  const dash = evr.lastIndexOf('-');
  const release = dash >= s ? evr.slice(dash + 1) : undefined;
  const end = dash >= s ? dash : evr.length;
  if (evr.charCodeAt(s) === 0x3a /* : */) {
    return { epoch: s === 0 ? '0' : evr.slice(0, s), version: evr.slice(s + 1, end), release };
  }
  return { epoch: undefined, version: evr.slice(0, end), release };
}

function checkComparable(v: string): void {
  if (typeof v !== 'string') throw new VersionError('INVALID_VERSION', 'an rpm version must be a string');
  if (v.length === 0) throw invalid(v, 'it is empty');
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      throw invalid(v, `control character U+${c.toString(16).padStart(4, '0')} at position ${i + 1}`);
    }
  }
}

/** Orders two already split EVRs like rpmverCmp(). */
export function compareRpmVersionParts(a: RpmVersion, b: RpmVersion): number {
  const rc = rpmvercmp(a.epoch ?? '0', b.epoch ?? '0') || rpmvercmp(a.version, b.version);
  if (rc !== 0) return rc;
  if (a.release !== undefined && b.release !== undefined) return rpmvercmp(a.release, b.release);
  if (a.release !== undefined) return 1;
  if (b.release !== undefined) return -1;
  return 0;
}

/** Orders two EVR strings as rpm does (see the file comment); throws for empty ones. */
export function compareRpmVersions(a: string, b: string): number {
  checkComparable(a);
  checkComparable(b);
  return compareRpmVersionParts(splitRpmVersion(a), splitRpmVersion(b));
}

const PART = /^[A-Za-z0-9._+~^]+$/;

/**
 * Throws `VersionError` (`INVALID_VERSION`) unless `v` is `[epoch:]version-release` with a
 * decimal epoch, and a version and a release made of what rpmbuild accepts (letters, digits and
 * `._+~^`, no `-`).
 */
export function validateRpmVersion(v: string): void {
  checkComparable(v);
  if (v.length > RPM_VERSION_MAX_LENGTH) {
    throw invalid(v, `it is longer than ${RPM_VERSION_MAX_LENGTH} characters`);
  }
  const m = /^(?:([0-9]+):)?([^:-]*)-([^:-]*)$/.exec(v);
  if (m === null) {
    if (!v.includes('-')) throw invalid(v, 'it has no release (expected [epoch:]version-release)');
    throw invalid(v, 'expected [epoch:]version-release, with one "-" and at most one ":" after digits');
  }
  const [, epoch, version = '', release = ''] = m;
  if (epoch !== undefined && epoch.length > 10) throw invalid(v, 'the epoch is too big');
  if (!PART.test(version)) {
    throw invalid(
      v,
      version === ''
        ? 'the version is empty'
        : 'the version has a character other than letters, digits and ._+~^',
    );
  }
  if (!PART.test(release)) {
    throw invalid(
      v,
      release === ''
        ? 'the release is empty'
        : 'the release has a character other than letters, digits and ._+~^',
    );
  }
}

/** Splits a valid EVR; throws like `validateRpmVersion` otherwise. */
export function parseRpmVersion(v: string): RpmVersion {
  validateRpmVersion(v);
  return splitRpmVersion(v);
}

/**
 * The EVR string rpm prints with `%{EVR}`: `epoch:` only when the package has an epoch
 * (`rpm -q --qf '%{EVR}'` prints `1:2.3-4`, and `2.3-4` when there is no epoch tag).
 */
export function formatRpmVersion(p: { epoch?: number | string; version: string; release: string }): string {
  const e = p.epoch === undefined ? '' : `${p.epoch}:`;
  return `${e}${p.version}-${p.release}`;
}

export const rpmVersionScheme: VersionScheme = Object.freeze({
  name: 'rpm' as const,
  compare: compareRpmVersions,
  validate: validateRpmVersion,
  isValid(v: string): boolean {
    try {
      validateRpmVersion(v);
      return true;
    } catch (e) {
      if (e instanceof VersionError) return false;
      throw e;
    }
  },
});
