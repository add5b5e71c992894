/**
 * apk's protected paths: what apk itself treats as the administrator's files. apk records no
 * per-file config flag; instead a modified file under a protected path is never overwritten on
 * upgrade (the new one is written as `.apk-new`), which is what dpkg conffiles and rpm %config
 * files get. The rules are apk's built-in ones, `+etc`, `@etc/init.d` and `!etc/apk`, followed by
 * every `etc/apk/protected_paths.d/*.list` of the root (packages and lbu add their own), one rule a
 * line: a mode character and a glob relative to the root:
 *
 *   `+` (or none) protected when changed · `-` not protected · `@` only symlinks are ·
 *   `!` protected unconditionally (apk's own state) · `#` a comment.
 *
 * A path's mode is apk's: walking down its directories, a rule whose first component matches a
 * directory either sets that directory's mode (a one-component rule) or is carried into it minus
 * that component; a directory inherits its parent's mode; a file takes its directory's mode, then
 * that of every one-component rule of the directory matching its name. Later rules win. Globs
 * are fnmatch(3) ones (`*`, `?`, `[...]`, `\`), within one component.
 *
 * Which modes mean "configuration" for verification (`isConfig`): `changed` only. `symlinks-only`
 * (etc/init.d) protects nothing but symlinks, and the init scripts there are code run as root,
 * so an edited one stays a failure; `all` is apk's own state (etc/apk), whose package files are the
 * repository signing keys (alpine-keys) and these lists, which must not change unnoticed either.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PackageDatabaseError, PathError } from '../../errors.js';
import type { RootDir } from '../../fs/in-root.js';

export type ApkProtectMode = 'none' | 'changed' | 'symlinks-only' | 'all';

export interface ApkProtectedPathRule {
  mode: ApkProtectMode;
  /** The glob's components, relative to the root (no leading or trailing `/`). */
  components: string[];
}

/** apk's built-in rules, applied before the root's own lists. */
export const APK_DEFAULT_PROTECTED_PATHS = '+etc\n@etc/init.d\n!etc/apk\n';
/** Where a root keeps its lists (`*.list`, read in name order). */
export const APK_PROTECTED_PATHS_DIR = '/etc/apk/protected_paths.d';

export const APK_PROTECTED_PATHS_LIMITS = {
  /** Bytes of one list. */
  fileBytes: 1024 * 1024,
  /** Lists in the directory. */
  files: 1000,
} as const;

const MODES: Record<string, ApkProtectMode> = {
  '+': 'changed',
  '-': 'none',
  '@': 'symlinks-only',
  '!': 'all',
};

/** Parses the text of a list (or the built-in rules): comments and empty lines are skipped. */
export function parseApkProtectedPaths(text: string): ApkProtectedPathRule[] {
  const rules: ApkProtectedPathRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || line.startsWith('#')) continue;
    const explicit = MODES[line[0] as string];
    const glob = (explicit === undefined ? line : line.slice(1)).replace(/^\/+/, '').replace(/\/+$/, '');
    if (glob === '') continue;
    rules.push({ mode: explicit ?? 'changed', components: glob.split('/') });
  }
  return rules;
}

const globCache = new Map<string, RegExp>();

/** fnmatch(3) of one path component, with FNM_PATHNAME (no wildcard matches `/`). */
export function fnmatchComponent(glob: string, name: string): boolean {
  let re = globCache.get(glob);
  if (re === undefined) {
    re = new RegExp(`^${globToRegExp(glob)}$`, 'su');
    if (globCache.size < 10_000) globCache.set(glob, re);
  }
  return re.test(name);
}

const escapeRegExp = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
/** The same inside a character class. */
const escapeInClass = (c: string): string => c.replace(/[\\\][^-]/g, '\\$&');

function globToRegExp(glob: string): string {
  const chars = [...glob];
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < chars.length) out += escapeRegExp(chars[++i] as string);
    else if (c === '[') {
      const cls = bracket(chars, i);
      if (cls === undefined) out += '\\[';
      else {
        out += cls.re;
        i = cls.end;
      }
    } else out += escapeRegExp(c);
  }
  return out;
}

/** A bracket expression starting at chars[start] (`[`), or undefined when it is not closed. */
function bracket(chars: string[], start: number): { re: string; end: number } | undefined {
  let i = start + 1;
  let negate = false;
  if (chars[i] === '!' || chars[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  let first = true;
  for (; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === ']' && !first) return { re: `[${negate ? '^/' : ''}${body}]`, end: i };
    first = false;
    if (c === '-' && body !== '' && chars[i + 1] !== ']' && i + 1 < chars.length) body += '-';
    else if (c === '\\' && i + 1 < chars.length) body += escapeInClass(chars[++i] as string);
    else body += escapeInClass(c);
  }
  return undefined;
}

/** A root's protected paths: its rules in order, and the lists they were read from. */
export class ApkProtectedPaths {
  constructor(
    readonly rules: readonly ApkProtectedPathRule[],
    /** In-root paths of the lists read, in the order applied. */
    readonly lists: readonly string[] = [],
  ) {}

  /** apk's built-in rules alone. */
  static defaults(): ApkProtectedPaths {
    return new ApkProtectedPaths(parseApkProtectedPaths(APK_DEFAULT_PROTECTED_PATHS));
  }

  /** apk's mode for a file (`/etc/passwd`); `directory` for a directory's own mode. */
  modeOf(p: string, options: { directory?: boolean } = {}): ApkProtectMode {
    const parts = p.split('/').filter((c) => c !== '');
    const dirs = options.directory ? parts : parts.slice(0, -1);
    let rules = this.rules;
    let mode: ApkProtectMode = 'none';
    // Files directly in `/` are never protected: apk keeps no rules for the root directory itself.
    if (dirs.length === 0 && !options.directory) return 'none';
    for (const dir of dirs) {
      const carried: ApkProtectedPathRule[] = [];
      for (const r of rules) {
        if (!fnmatchComponent(r.components[0] as string, dir)) continue;
        if (r.components.length > 1) carried.push({ mode: r.mode, components: r.components.slice(1) });
        else mode = r.mode;
      }
      rules = carried;
    }
    if (!options.directory) {
      const name = parts[parts.length - 1] as string;
      for (const r of rules) {
        if (r.components.length === 1 && fnmatchComponent(r.components[0] as string, name)) mode = r.mode;
      }
    }
    return mode;
  }

  /** Whether apk leaves a change of this file to the administrator (see the file comment). */
  isConfig(p: string): boolean {
    return this.modeOf(p) === 'changed';
  }
}

/**
 * apk's built-in rules, then every `*.list` in the root's `etc/apk/protected_paths.d` in name
 * order, as apk reads them. A list that is not a regular file is skipped (apk cannot read it
 * either); one larger than the limit is DATABASE_TOO_LARGE.
 */
export function readApkProtectedPaths(rootDir: RootDir): ApkProtectedPaths {
  const rules = parseApkProtectedPaths(APK_DEFAULT_PROTECTED_PATHS);
  const lists: string[] = [];
  let names: string[] = [];
  try {
    const dir = path.join(rootDir.hostPath, ...rootDir.resolveDirectory(APK_PROTECTED_PATHS_DIR));
    names = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.list'))
      .sort();
  } catch (e) {
    // No such directory (or not one): apk's built-in rules alone, as apk does.
    if (e instanceof PathError || (e as NodeJS.ErrnoException).code === 'ENOENT') names = [];
    else {
      throw new PackageDatabaseError(
        'DATABASE_CORRUPT',
        `cannot list the protected paths: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        { file: path.join(rootDir.hostPath, APK_PROTECTED_PATHS_DIR) },
        { cause: e },
      );
    }
  }
  if (names.length > APK_PROTECTED_PATHS_LIMITS.files) {
    throw new PackageDatabaseError(
      'DATABASE_TOO_LARGE',
      `more than ${APK_PROTECTED_PATHS_LIMITS.files} protected path lists`,
      { file: path.join(rootDir.hostPath, APK_PROTECTED_PATHS_DIR) },
    );
  }
  for (const name of names) {
    const inRoot = `${APK_PROTECTED_PATHS_DIR}/${name}`;
    let text: string;
    try {
      text = rootDir.readFile(inRoot, APK_PROTECTED_PATHS_LIMITS.fileBytes).toString('utf8');
    } catch (e) {
      if (e instanceof PathError && e.code === 'TOO_LARGE') {
        throw new PackageDatabaseError(
          'DATABASE_TOO_LARGE',
          `larger than ${APK_PROTECTED_PATHS_LIMITS.fileBytes} bytes`,
          { file: path.join(rootDir.hostPath, inRoot) },
        );
      }
      if (e instanceof PathError && e.code !== 'IO_ERROR') continue;
      throw e;
    }
    rules.push(...parseApkProtectedPaths(text));
    lists.push(inRoot);
  }
  return new ApkProtectedPaths(rules, lists);
}
