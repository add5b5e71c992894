/**
 * Debian package versions: `[epoch:]upstream_version[-debian_revision]`.
 *
 * Rules: deb-version(7) and Debian Policy 5.6.12 ("Version"). `compare` orders exactly as
 * `dpkg --compare-versions` does (dpkg's verrevcmp()); `validate` reports every problem dpkg's
 * parseversion() reports, errors *and* warnings, plus a few stricter rules sysattest adds so that a
 * version it accepts is also a safe, canonical key. The differences from dpkg are deliberate and
 * listed here:
 *
 * | input                          | dpkg (parseversion)              | compare        | validate |
 * |--------------------------------|----------------------------------|----------------|----------|
 * | empty, embedded blank, bad or  | error (`--compare-versions`      | throws         | throws   |
 * |  too big epoch, `1:`, `1.0-`,  |  exits 2)                        |                |          |
 * |  empty upstream                |                                  |                |          |
 * | upstream not starting with a   | warning, then compares anyway    | orders like    | throws   |
 * |  digit, invalid character      |                                  |  dpkg          |          |
 * | non-ASCII or control character | warning; order depends on the    | throws         | throws   |
 * |                                |  C compiler's `char` signedness  |                |          |
 * | signed epoch (`+1:1.0`)        | accepted (strtol)                | throws         | throws   |
 * | leading/trailing blanks        | trimmed silently                 | trimmed        | throws   |
 * | longer than 256 characters     | accepted                         | orders         | throws   |
 * | `""` / `<unknown>`             | `--compare-versions` takes them  | throws         | throws   |
 * |                                |  as "no version" without parsing |                |          |
 */
import { VersionError } from '../errors.js';
import type { VersionScheme } from './scheme.js';

/** A version split into its three parts. Missing epoch is 0, missing revision is "". */
export interface DpkgVersion {
  readonly epoch: number;
  readonly upstream: string;
  readonly revision: string;
}

/** Longest version `validate` accepts. The longest in Debian bookworm is 52 characters. */
export const DPKG_VERSION_MAX_LENGTH = 256;

/** dpkg refuses epochs above INT_MAX ("epoch in version is too big"). */
export const DPKG_EPOCH_MAX = 2147483647;

const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_TILDE = 0x7e;

function isDigit(c: number): boolean {
  return c >= CH_0 && c <= CH_9;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** dpkg's c_isblank(): what parseversion() trims and calls "embedded spaces". */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Printable ASCII other than space: the only characters whose dpkg order is portable. */
function isPrintableAscii(c: number): boolean {
  return c > 0x20 && c < 0x7f;
}

/** For messages: the version, quoted, cut short if huge. */
function show(v: string): string {
  return v.length > 80 ? `${JSON.stringify(v.slice(0, 80))}… (${v.length} characters)` : JSON.stringify(v);
}

function describeChar(v: string, i: number): string {
  const cp = v.codePointAt(i) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return isPrintableAscii(cp)
    ? `'${String.fromCodePoint(cp)}' at position ${i + 1}`
    : `${hex} at position ${i + 1}`;
}

function invalid(v: string, problem: string): VersionError {
  return new VersionError('INVALID_VERSION', `invalid dpkg version ${show(v)}: ${problem}`);
}

interface Parsed {
  version: DpkgVersion;
  /** What dpkg would only warn about (first problem found, as dpkg reports the first one). */
  warning: string | undefined;
}

/**
 * parseversion() from dpkg's lib/dpkg/parsehelp.c, rewritten: throws for what dpkg treats as an
 * error, returns what dpkg only warns about in `warning`.
 */
function parse(input: string): Parsed {
  if (typeof input !== 'string') {
    throw new VersionError('INVALID_VERSION', `invalid dpkg version: expected a string, got ${typeof input}`);
  }
  // Trim blanks on both sides, as dpkg does; a blank left inside is an error.
  let start = 0;
  let end = input.length;
  while (start < end && isBlank(input.charCodeAt(start))) start++;
  while (end > start && isBlank(input.charCodeAt(end - 1))) end--;
  if (start === end) throw invalid(input, 'version string is empty');
  const s = input.slice(start, end);
  if (s === '<unknown>') {
    throw invalid(input, `"<unknown>" is dpkg's placeholder for "no version", not a version`);
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isBlank(c)) throw invalid(input, 'version string has embedded spaces');
    // dpkg only warns about these, but orders them by the C `char` signedness of the machine
    // (bytes >= 0x80 sort differently on amd64 and arm64), so no answer would be "dpkg's".
    if (!isPrintableAscii(c)) {
      throw invalid(
        input,
        `invalid character in version number (${describeChar(s, i)}): only printable ASCII is allowed`,
      );
    }
  }

  // Epoch: everything before the first colon (so the upstream part may contain colons only when an
  // epoch is present), "a single (generally small) unsigned integer" (deb-version(7)).
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const e = s.slice(0, colon);
    if (e.length === 0) throw invalid(input, 'epoch in version is empty');
    if (!/^[0-9]+$/.test(e)) {
      throw invalid(input, `epoch in version is not a number (${show(e)}; only the digits 0-9 are allowed)`);
    }
    const digits = e.replace(/^0+/, '');
    if (digits.length > 10 || Number(digits) > DPKG_EPOCH_MAX) {
      throw invalid(input, `epoch in version is too big (at most ${DPKG_EPOCH_MAX})`);
    }
    epoch = Number(digits);
    rest = s.slice(colon + 1);
    if (rest.length === 0) throw invalid(input, 'nothing after colon in version number');
  }

  // Revision: after the LAST hyphen, so the upstream part may contain hyphens (deb-version(7)).
  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision.length === 0)
      throw invalid(input, 'revision number is empty (nothing after the last hyphen)');
  }
  if (upstream.length === 0) throw invalid(input, 'upstream version is empty');

  return { version: { epoch, upstream, revision }, warning: warningFor(upstream, revision) };
}

/** The problems dpkg only warns about, in dpkg's order; the first one found. */
function warningFor(upstream: string, revision: string): string | undefined {
  // Policy 5.6.12: the upstream version "should start with a digit" and may contain only
  // alphanumerics and . + - ~. dpkg also allows ':' (older Policy did, after an epoch; without an
  // epoch the first colon would have been taken as the epoch separator), and so do we.
  if (!isDigit(upstream.charCodeAt(0))) {
    return `version number does not start with digit (${describeChar(upstream, 0)} of the upstream version)`;
  }
  for (let i = 1; i < upstream.length; i++) {
    const c = upstream.charCodeAt(i);
    if (!isDigit(c) && !isAsciiLetter(c) && !'.-+~:'.includes(upstream[i] ?? '')) {
      return `invalid character in version number (${describeChar(upstream, i)} of the upstream version; allowed: A-Z a-z 0-9 . + - ~ :)`;
    }
  }
  // The revision may contain only alphanumerics and + . ~ (no hyphen: it starts after the last one).
  for (let i = 0; i < revision.length; i++) {
    const c = revision.charCodeAt(i);
    if (!isDigit(c) && !isAsciiLetter(c) && !'.+~'.includes(revision[i] ?? '')) {
      return `invalid character in revision number (${describeChar(revision, i)} of the revision; allowed: A-Z a-z 0-9 . + ~)`;
    }
  }
  return undefined;
}

/**
 * The weight dpkg gives a character of a non-digit part (deb-version(7)): `~` sorts before
 * everything, even the end of the part; then the end of the part (and a digit, which ends the
 * non-digit part); then letters (in ASCII order); then every other character (in ASCII order).
 */
function order(s: string, i: number): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i);
  if (isDigit(c)) return 0; // the other side is a non-digit: a digit weighs like the end
  if (c === CH_TILDE) return -1;
  if (isAsciiLetter(c)) return c;
  return c + 256;
}

/**
 * dpkg's verrevcmp(), for one part (upstream or revision): alternate non-digit runs (compared
 * character by character with `order`) and digit runs (compared as numbers of any length: leading
 * zeros dropped, the longer number is bigger, equal lengths compare lexically; an empty run is 0).
 */
function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const d = order(a, i) - order(b, j);
      if (d !== 0) return Math.sign(d);
      i++;
      j++;
    }
    while (i < a.length && a.charCodeAt(i) === CH_0) i++;
    while (j < b.length && b.charCodeAt(j) === CH_0) j++;
    let ie = i;
    let je = j;
    while (ie < a.length && isDigit(a.charCodeAt(ie))) ie++;
    while (je < b.length && isDigit(b.charCodeAt(je))) je++;
    if (ie - i !== je - j) return ie - i > je - j ? 1 : -1;
    for (; i < ie; i++, j++) {
      const d = a.charCodeAt(i) - b.charCodeAt(j);
      if (d !== 0) return Math.sign(d);
    }
  }
  return 0;
}

/** Compares two parsed versions: epoch numerically, then upstream, then revision. */
export function compareDpkgVersionParts(a: DpkgVersion, b: DpkgVersion): number {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? 1 : -1;
  return compareParts(a.upstream, b.upstream) || compareParts(a.revision, b.revision);
}

/**
 * `dpkg --compare-versions` as a function: -1, 0 or 1. Throws `VersionError` for what dpkg
 * refuses (and for the few inputs listed at the top of this file); what dpkg only warns about is
 * ordered the way dpkg orders it.
 */
export function compareDpkgVersions(a: string, b: string): number {
  return compareDpkgVersionParts(parse(a).version, parse(b).version);
}

/** `parse` plus what dpkg only warns about and sysattest's own stricter rules. */
function parseStrict(v: string): DpkgVersion {
  if (typeof v === 'string') {
    if (v.length > DPKG_VERSION_MAX_LENGTH) {
      throw invalid(v, `version is longer than ${DPKG_VERSION_MAX_LENGTH} characters`);
    }
    if (v.length > 0 && (isBlank(v.charCodeAt(0)) || isBlank(v.charCodeAt(v.length - 1)))) {
      // Not canonical: dpkg trims it, but " 1.0" and "1.0" must not be two different keys.
      throw invalid(v, 'version has leading or trailing whitespace');
    }
  }
  const { version, warning } = parse(v);
  if (warning !== undefined) throw invalid(v, warning);
  return version;
}

/** Throws `VersionError` (`INVALID_VERSION`) saying what is wrong unless `v` is a valid version. */
export function validateDpkgVersion(v: string): void {
  parseStrict(v);
}

/** Splits a valid version into its parts; throws like `validateDpkgVersion` otherwise. */
export function parseDpkgVersion(v: string): DpkgVersion {
  return parseStrict(v);
}

export const dpkgVersionScheme: VersionScheme = Object.freeze({
  name: 'dpkg' as const,
  compare: compareDpkgVersions,
  validate: validateDpkgVersion,
  isValid(v: string): boolean {
    try {
      validateDpkgVersion(v);
      return true;
    } catch (e) {
      if (e instanceof VersionError) return false;
      throw e;
    }
  },
});
