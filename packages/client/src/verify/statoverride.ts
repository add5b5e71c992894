import { PathError, type RootDir } from '@sysattest/core';

/**
 * dpkg-statoverride(1) records under the root (`var/lib/dpkg/statoverride`): the administrator's
 * chosen owner, group and mode for a path, which dpkg applies on every upgrade. A path with an
 * override is expected to have those, not what the package shipped. Lines are
 * `USER GROUP MODE PATH` (USER/GROUP a name or `#id`, MODE octal).
 */
export interface StatOverride {
  /** A name, or undefined when the override gives a number (`#0`). */
  user?: string;
  uid?: number;
  group?: string;
  gid?: number;
  /** Permission bits (with setuid/setgid/sticky). */
  mode: number;
}

const MAX_STATOVERRIDE_BYTES = 4 * 1024 * 1024;
const LINE = /^(\S+)\s+(\S+)\s+([0-7]{1,5})\s+(\/.*)$/;

export interface StatOverrides {
  overrides: Map<string, StatOverride>;
  /** Lines that could not be used, for the report's notes. */
  notes: string[];
}

export function parseStatOverride(text: string, where = 'statoverride'): StatOverrides {
  const overrides = new Map<string, StatOverride>();
  const notes: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const m = LINE.exec(line);
    if (m === null) {
      notes.push(`${where}:${i + 1}: not "USER GROUP MODE PATH": ignored`);
      return;
    }
    const [, user, group, mode, p] = m as unknown as [string, string, string, string, string];
    const o: StatOverride = { mode: parseInt(mode, 8) & 0o7777 };
    const id = (v: string): number | undefined => (/^#[0-9]{1,10}$/.test(v) ? Number(v.slice(1)) : undefined);
    if (id(user) !== undefined) o.uid = id(user);
    else o.user = user;
    if (id(group) !== undefined) o.gid = id(group);
    else o.group = group;
    overrides.set(p, o);
  });
  return { overrides, notes };
}

/** The root's overrides; none when the file does not exist. */
export function readStatOverrides(root: RootDir): StatOverrides {
  let text: string;
  try {
    text = root.readFile('/var/lib/dpkg/statoverride', MAX_STATOVERRIDE_BYTES).toString('utf8');
  } catch (e) {
    if (e instanceof PathError && e.code === 'NOT_FOUND') return { overrides: new Map(), notes: [] };
    if (e instanceof PathError) return { overrides: new Map(), notes: [`statoverride: ${e.message}`] };
    throw e;
  }
  return parseStatOverride(text, '/var/lib/dpkg/statoverride');
}
