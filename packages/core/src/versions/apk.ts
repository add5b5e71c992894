/**
 * Alpine package versions (apk-tools 2.14 / 3.x, `apk version -t`):
 *
 *     digits{.digits}…[letter]{_suffix[digits]}…[~hash][-rN]
 *
 * The rules, numbered so that the tests can cite them (apk-tools src/version.c):
 *  - R1 grammar: the version starts with digits; `.digits` parts may follow; then at most one
 *    lower-case letter (after digits only); then any number of `_suffix` parts, each optionally
 *    followed by digits; then at most one `~` and lower-case hex digits (a commit hash); then at
 *    most one `-r` and digits (the package revision). Anything else makes the version invalid.
 *  - R2 token by token: the two versions are compared one token at a time from the left, while
 *    both have a token of the same kind; the first difference decides.
 *  - R3 numbers: the first number, suffix numbers and the revision compare by value (`1.10` >
 *    `1.9`, `-r10` > `-r9`, `_p10` > `_p9`); like apk, values are unsigned 64-bit (wrapping).
 *  - R4 leading zero: a `.digits` part of which either side starts with `0` compares as a
 *    string, byte by byte, the shorter first when one is a prefix (`1.02` < `1.1`, `1.01` < `1.010`,
 *    `1.0` < `1.00`).
 *  - R5 letters compare by ASCII (`1.0a` < `1.0b`).
 *  - R6 suffixes order `_alpha` < `_beta` < `_pre` < `_rc` < (no suffix) < `_cvs` < `_svn` <
 *    `_git` < `_hg` < `_p`.
 *  - R7 commit hashes compare as strings.
 *  - R8 when one version runs out of tokens (or has a token of another kind) while all tokens so
 *    far were equal: a version whose next token is a pre-release suffix (`_alpha`, `_beta`, `_pre`,
 *    `_rc`) is older (`1.0_rc1` < `1.0`); otherwise the version whose next token comes *earlier* in
 *    the grammar is newer (`1.0.1` > `1.0a` > `1.0_p1` > `1.0~abc` > `1.0-r1` > `1.0`).
 *
 * `compare` throws `VersionError` for a version that is not valid under R1 (apk itself refuses
 * such versions in packages and in its database), `validate` also refuses versions longer than
 * 256 characters.
 */
import { VersionError } from '../errors.js';
import type { VersionScheme } from './scheme.js';

/** Longest version `validate` accepts. */
export const APK_VERSION_MAX_LENGTH = 256;

/** Token kinds, in grammar order (R8 depends on this order). */
const enum Tok {
  InitialDigit = 0,
  Digit = 1,
  Letter = 2,
  Suffix = 3,
  SuffixNo = 4,
  CommitHash = 5,
  RevisionNo = 6,
  End = 7,
  Invalid = 8,
}

/** R6: suffix ranks; NONE (5) is the rank of "no suffix". */
const SUFFIX_RANK: ReadonlyMap<string, number> = new Map([
  ['alpha', 1],
  ['beta', 2],
  ['pre', 3],
  ['rc', 4],
  ['cvs', 6],
  ['svn', 7],
  ['git', 8],
  ['hg', 9],
  ['p', 10],
]);
const SUFFIX_NONE = 5;

interface Token {
  kind: Tok;
  /** The token's characters (digits, the letter, the suffix word, the hash). */
  value: string;
  suffix: number;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}
function isLowerHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66);
}

/** A tokenizer over one version string. */
class Tokens {
  pos = 0;
  readonly t: Token = { kind: Tok.InitialDigit, value: '', suffix: 0 };
  constructor(readonly s: string) {
    this.digits(Tok.InitialDigit);
  }

  private span(pred: (c: number) => boolean): string {
    const start = this.pos;
    while (this.pos < this.s.length && pred(this.s.charCodeAt(this.pos))) this.pos++;
    return this.s.slice(start, this.pos);
  }

  private digits(kind: Tok): void {
    this.t.kind = kind;
    this.t.value = this.span(isDigit);
    if (this.t.value === '') this.t.kind = Tok.Invalid;
  }

  next(): void {
    const t = this.t;
    if (this.pos >= this.s.length) {
      t.kind = Tok.End;
      return;
    }
    const c = this.s.charCodeAt(this.pos);
    if (isLower(c)) {
      if (t.kind > Tok.Digit) return this.invalid();
      t.value = this.s[this.pos++] as string;
      t.kind = Tok.Letter;
    } else if (c === 0x2e /* . */ || isDigit(c)) {
      if (c === 0x2e) {
        if (t.kind > Tok.Digit) return this.invalid();
        this.pos++;
      }
      if (t.kind === Tok.InitialDigit || t.kind === Tok.Digit) this.digits(Tok.Digit);
      else if (t.kind === Tok.Suffix) this.digits(Tok.SuffixNo);
      else this.invalid();
    } else if (c === 0x5f /* _ */) {
      if (t.kind > Tok.SuffixNo) return this.invalid();
      this.pos++;
      t.value = this.span(isLower);
      const rank = SUFFIX_RANK.get(t.value);
      if (rank === undefined) return this.invalid();
      t.suffix = rank;
      t.kind = Tok.Suffix;
    } else if (c === 0x7e /* ~ */) {
      if (t.kind >= Tok.CommitHash) return this.invalid();
      this.pos++;
      t.value = this.span(isLowerHex);
      if (t.value === '') return this.invalid();
      t.kind = Tok.CommitHash;
    } else if (c === 0x2d /* - */) {
      if (t.kind >= Tok.RevisionNo || this.s.charCodeAt(this.pos + 1) !== 0x72 /* r */) return this.invalid();
      this.pos += 2;
      this.digits(Tok.RevisionNo);
    } else {
      this.invalid();
    }
  }

  private invalid(): void {
    this.t.kind = Tok.Invalid;
  }
}

/** R3: apk_blob_pull_uint() keeps the value in a uint64_t, which wraps. */
function numberValue(digits: string): bigint | number {
  return digits.length <= 15 ? Number(digits) : BigInt.asUintN(64, BigInt(digits));
}

/** apk_blob_sort(): bytes, then length. Versions are ASCII here, so UTF-16 order is byte order. */
function stringSort(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareTokens(a: Token, b: Token): number {
  // R4: a `.digits` part with a leading zero on either side compares as a string.
  if (a.kind === Tok.Digit && (a.value.charCodeAt(0) === 0x30 || b.value.charCodeAt(0) === 0x30)) {
    return stringSort(a.value, b.value);
  }
  switch (a.kind) {
    case Tok.InitialDigit:
    case Tok.Digit:
    case Tok.SuffixNo:
    case Tok.RevisionNo: {
      // R3
      const x = numberValue(a.value);
      const y = numberValue(b.value);
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case Tok.Letter: // R5
      return Math.sign(a.value.charCodeAt(0) - b.value.charCodeAt(0));
    case Tok.Suffix: // R6
      return Math.sign(a.suffix - b.suffix);
    default: // R7: commit hashes
      return stringSort(a.value, b.value);
  }
}

function show(v: string): string {
  return v.length > 80 ? `${JSON.stringify(v.slice(0, 80))}… (${v.length} characters)` : JSON.stringify(v);
}

/** Where `v` stops being a valid version (R1), or undefined when it is valid. */
function problemOf(v: string): string | undefined {
  if (typeof v !== 'string') return 'it is not a string';
  if (v === '') return 'it is empty';
  const t = new Tokens(v);
  let before = 0;
  while (t.t.kind < Tok.End) {
    before = t.pos;
    t.next();
  }
  if (t.t.kind === Tok.End) return undefined;
  if (before === 0 && !isDigit(v.charCodeAt(0))) return 'it does not start with a digit';
  return `unexpected ${JSON.stringify(v.slice(before, before + 8))} at position ${before + 1} (expected digits{.digits}[letter]{_suffix[N]}[~hash][-rN])`;
}

function check(v: string): void {
  const problem = problemOf(v);
  if (problem !== undefined) {
    throw new VersionError(
      'INVALID_VERSION',
      `invalid apk version ${typeof v === 'string' ? show(v) : String(v)}: ${problem}`,
    );
  }
}

/** Orders two apk versions as `apk version -t` does (R2–R8); throws for invalid ones (R1). */
export function compareApkVersions(a: string, b: string): number {
  check(a);
  check(b);
  if (a === b) return 0;
  const ta = new Tokens(a);
  const tb = new Tokens(b);
  while (ta.t.kind === tb.t.kind && ta.t.kind < Tok.End) {
    const r = compareTokens(ta.t, tb.t);
    if (r !== 0) return r;
    ta.next();
    tb.next();
  }
  const ka = ta.t.kind;
  const kb = tb.t.kind;
  if (ka === kb) return 0;
  // R8
  if (ka === Tok.Suffix && ta.t.suffix < SUFFIX_NONE) return -1;
  if (kb === Tok.Suffix && tb.t.suffix < SUFFIX_NONE) return 1;
  return ka > kb ? -1 : 1;
}

/** Throws `VersionError` (`INVALID_VERSION`) saying what is wrong unless `v` is a valid apk version. */
export function validateApkVersion(v: string): void {
  check(v);
  if (v.length > APK_VERSION_MAX_LENGTH) {
    throw new VersionError(
      'INVALID_VERSION',
      `invalid apk version ${show(v)}: it is longer than ${APK_VERSION_MAX_LENGTH} characters`,
    );
  }
}

export const apkVersionScheme: VersionScheme = Object.freeze({
  name: 'apk' as const,
  compare: compareApkVersions,
  validate: validateApkVersion,
  isValid(v: string): boolean {
    try {
      validateApkVersion(v);
      return true;
    } catch (e) {
      if (e instanceof VersionError) return false;
      throw e;
    }
  },
});
