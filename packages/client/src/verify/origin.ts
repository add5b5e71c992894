import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { PathError, type RootDir } from '@sysattest/core';

/**
 * Where an installed package came from, for the packages the server's catalog does not offer:
 * dpkg's status records no origin, but apt's lists under the root (`var/lib/apt/lists`) do: each
 * repository's `…_InRelease` (or `…_Release`) names its `Origin`, and its `…_Packages` indexes
 * list the versions it offers. A package whose installed version is offered by a repository whose
 * Origin is not the distribution's own (e.g. `Docker`, `PostgreSQL`) is `foreign-origin`: the
 * server does not track that repository, so no manifest can exist. One found in no list (a .deb
 * installed by hand, or lists since cleaned) stays `not-in-catalog`: the lists cannot tell.
 */
export const DISTRO_ORIGINS: Readonly<Record<string, readonly string[]>> = {
  debian: ['Debian'],
  ubuntu: ['Ubuntu'],
};

const MAX_RELEASE_BYTES = 16 * 1024 * 1024;
const MAX_PACKAGES_BYTES = 512 * 1024 * 1024;

export interface ForeignOrigin {
  origin: string;
  /** The list file it was found in (name only). */
  list: string;
}

/**
 * For each `name\0version` asked about, the foreign repository that offers it, if any. Reads
 * only the indexes of repositories whose Origin is not the distribution's.
 */
export async function findForeignOrigins(
  root: RootDir,
  distro: string,
  wanted: ReadonlyArray<{ name: string; version: string }>,
): Promise<Map<string, ForeignOrigin>> {
  const found = new Map<string, ForeignOrigin>();
  if (wanted.length === 0) return found;
  let dir: string;
  try {
    dir = root.resolve(`/${root.resolveDirectory('/var/lib/apt/lists').join('/')}`);
  } catch (e) {
    if (e instanceof PathError) return found;
    throw e;
  }
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return found;
  }
  const own = new Set(DISTRO_ORIGINS[distro] ?? []);
  const keys = new Set(wanted.map((w) => `${w.name}\0${w.version}`));
  // Release prefix (everything up to `InRelease`/`Release`) → Origin.
  const origins = new Map<string, string>();
  for (const name of names) {
    const m = /^(.*_)(In)?Release$/.exec(name);
    if (m === null) continue;
    const origin = await releaseOrigin(path.join(dir, name));
    if (origin !== undefined) origins.set(m[1] as string, origin);
  }
  for (const name of names.sort()) {
    if (!name.endsWith('_Packages')) continue;
    let origin: string | undefined;
    for (const [prefix, o] of origins) if (name.startsWith(prefix)) origin = o;
    if (origin === undefined || own.has(origin)) continue;
    for (const key of await offered(path.join(dir, name), keys)) {
      if (!found.has(key)) found.set(key, { origin, list: name });
    }
  }
  return found;
}

async function releaseOrigin(file: string): Promise<string | undefined> {
  let started = false;
  for await (const line of lines(file, MAX_RELEASE_BYTES)) {
    // The first paragraph only (in an InRelease, it starts after the PGP header's blank line).
    if (line === '') {
      if (started) return undefined;
      continue;
    }
    started = true;
    const m = /^Origin:\s*(.+?)\s*$/.exec(line);
    if (m !== null) return m[1];
  }
  return undefined;
}

/** The wanted `name\0version` keys a Packages index offers. */
async function offered(file: string, keys: ReadonlySet<string>): Promise<string[]> {
  const out: string[] = [];
  let pkg: string | undefined;
  for await (const line of lines(file, MAX_PACKAGES_BYTES)) {
    if (line === '') pkg = undefined;
    else if (line.startsWith('Package:')) pkg = line.slice(8).trim();
    else if (line.startsWith('Version:') && pkg !== undefined) {
      const key = `${pkg}\0${line.slice(8).trim()}`;
      if (keys.has(key)) out.push(key);
    }
  }
  return out;
}

/** Lines of a regular file (never a FIFO or device), at most `maxBytes` read. */
async function* lines(file: string, maxBytes: number): AsyncGenerator<string> {
  let fd: number;
  try {
    if (!fs.lstatSync(file).isFile()) return;
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return;
  }
  const stream = fs.createReadStream('', { fd, end: maxBytes - 1 });
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of rl) {
      if (line.startsWith('-----BEGIN PGP SIGNED MESSAGE') || line.startsWith('Hash:')) continue;
      yield line;
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}
