import { PathError, parseDeb822, type DpkgPackage, type RootDir } from '@sysattest/core';

/**
 * Which system accounts a package would have if it were installed alone: the names that the
 * maintainer scripts (preinst, postinst) and sysusers.d files of the package and of everything it
 * depends on mention, as installed in the batch's container. Installing the package alone installs
 * the same dependencies and runs the same scripts, so an account one of them names exists then
 * too; only its id may differ, and the client compares owners by name (compare.ts). An owner named
 * by no script of that closure came from elsewhere in the batch (batch-isolation.ts sets the
 * manifest aside).
 *
 * Parsing is pure (`parseRelations`, `dependencyClosure`, `accountWords`); `AccountOrigins` reads
 * the container through RootDir (symlinks stay inside the root, sizes are capped) and caches per
 * package, so a batch reads each script once.
 */

/** The largest dpkg status file read (a container with every package of a release is ~70 MiB). */
const MAX_STATUS_BYTES = 128 * 1024 * 1024;
/** The largest maintainer script or sysusers.d file read; a larger one is read as naming nothing. */
const MAX_SCRIPT_BYTES = 4 * 1024 * 1024;
/** Packages whose scripts are read for one closure, at most (a release's whole graph is ~65k). */
const MAX_CLOSURE = 20_000;

const SCRIPTS = ['preinst', 'postinst'] as const;
const SYSUSERS = /^\/(?:usr\/)?lib\/sysusers\.d\/[^/]+\.conf$/;
/** Words a user or group name can be (useradd's own rule is narrower). */
const WORD = /[A-Za-z_][A-Za-z0-9_.-]*\$?/g;

export interface Relations {
  /** Installed package name → the names in its Depends and Pre-Depends, every alternative included. */
  depends: Map<string, string[]>;
  /** Virtual name → the installed packages that provide it. */
  providers: Map<string, string[]>;
}

/** Depends, Pre-Depends and Provides of the installed packages of a dpkg status file. */
export function parseRelations(statusText: string, file: string): Relations {
  const depends = new Map<string, string[]>();
  const providers = new Map<string, string[]>();
  for (const p of parseDeb822(statusText, file)) {
    const name = p.fields.get('package')?.value;
    const status = p.fields.get('status')?.value ?? '';
    if (name === undefined || !/ (installed|triggers-pending|triggers-awaited)$/.test(status)) continue;
    const names = [p.fields.get('pre-depends'), p.fields.get('depends')].flatMap((f) =>
      relationNames(f?.value),
    );
    depends.set(name, [...(depends.get(name) ?? []), ...names]);
    for (const virtual of relationNames(p.fields.get('provides')?.value)) {
      const list = providers.get(virtual);
      if (list === undefined) providers.set(virtual, [name]);
      else if (!list.includes(name)) list.push(name);
    }
  }
  return { depends, providers };
}

/** `a (>= 1), b:any | c` → a, b, c. */
function relationNames(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const alternative of value.split(/[,|]/)) {
    const m = /^\s*([a-z0-9][a-z0-9+.-]+)/.exec(alternative);
    if (m) out.push(m[1] as string);
  }
  return out;
}

/** `name` and every installed package it depends on, directly or not (virtual names resolved). */
export function dependencyClosure(name: string, relations: Relations, limit = MAX_CLOSURE): Set<string> {
  const seen = new Set<string>([name]);
  const todo = [name];
  for (let next = todo.pop(); next !== undefined && seen.size < limit; next = todo.pop()) {
    for (const dep of relations.depends.get(next) ?? []) {
      const candidates = relations.depends.has(dep) ? [dep] : (relations.providers.get(dep) ?? []);
      for (const c of candidates) {
        if (!seen.has(c)) {
          seen.add(c);
          todo.push(c);
        }
      }
    }
  }
  return seen;
}

/** Every word of a script or sysusers.d file that could be an account name. */
export function accountWords(text: string): Set<string> {
  return new Set(text.match(WORD) ?? []);
}

/** The account names a package's own scripts and those of its dependency closure mention. */
export class AccountOrigins {
  private relations: Relations | undefined;
  private readonly wordsOf = new Map<string, ReadonlySet<string>>();
  private readonly closures = new Map<string, Set<string>>();
  private readonly byName: Map<string, DpkgPackage[]>;

  constructor(
    private readonly root: RootDir,
    packages: readonly DpkgPackage[],
  ) {
    this.byName = new Map();
    for (const p of packages) this.byName.set(p.name, [...(this.byName.get(p.name) ?? []), p]);
  }

  /** Whether `account` is named by `packageName`'s scripts or its dependencies'. */
  names(packageName: string, account: string): boolean {
    this.relations ??= this.readRelations();
    let closure = this.closures.get(packageName);
    if (closure === undefined) {
      closure = dependencyClosure(packageName, this.relations);
      this.closures.set(packageName, closure);
    }
    for (const name of closure) {
      if (this.words(name).has(account)) return true;
    }
    return false;
  }

  private readRelations(): Relations {
    const file = '/var/lib/dpkg/status';
    return parseRelations(this.root.readFile(file, MAX_STATUS_BYTES).toString('utf8'), file);
  }

  private words(name: string): ReadonlySet<string> {
    let words = this.wordsOf.get(name);
    if (words === undefined) {
      const texts: string[] = [];
      for (const pkg of this.byName.get(name) ?? []) {
        for (const script of SCRIPTS) {
          for (const stem of [pkg.name, `${pkg.name}:${pkg.architecture}`])
            texts.push(this.read(`/var/lib/dpkg/info/${stem}.${script}`));
        }
        for (const f of pkg.files) if (SYSUSERS.test(f.path)) texts.push(this.read(f.path));
      }
      words = accountWords(texts.join('\n'));
      this.wordsOf.set(name, words);
    }
    return words;
  }

  /** A file's text; '' when it is absent, not a regular file or too large (it then names nothing). */
  private read(file: string): string {
    try {
      return this.root.readFile(file, MAX_SCRIPT_BYTES).toString('utf8');
    } catch (e) {
      if (e instanceof PathError) return '';
      throw e;
    }
  }
}
