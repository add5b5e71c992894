/**
 * What systemd does before it starts a service, for the parts our units use (systemd.exec(5)): a
 * clean environment plus `Environment=`, the directories of `StateDirectory=` and
 * `CacheDirectory=` made with their modes (and owned by `User=`), `WorkingDirectory=`, `UMask=`,
 * then `ExecStart=` as `User=`/`Group=`. Tests use it to run an installed unit's command line where
 * systemd does not run (a container), exactly as the unit file says.
 */
export interface ServiceCommand {
  environment: Record<string, string>;
  argv: string[];
  /** Absolute paths and modes, made before the command runs. */
  directories: { path: string; mode: number }[];
  /** Who the command runs as (default root). */
  user?: string;
  group?: string;
  workingDirectory?: string;
  /** `UMask=`, octal digits. */
  umask?: string;
}

/** systemd's PATH for system services (systemd.exec(5), "Environment variables in spawned processes"). */
export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

/**
 * Reads the `[Service]` section of a unit file. Refuses what this reading does not model: quoting,
 * specifiers (`%`), ExecStart prefixes (`-`, `@`, `+`…), several ExecStart lines.
 */
export function serviceCommand(unitText: string): ServiceCommand {
  const settings: [string, string][] = [];
  let section = '';
  for (const raw of unitText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`not a setting: ${line}`);
    settings.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  const plain = (key: string, value: string): string[] => {
    if (/["'%\\]/.test(value)) throw new Error(`${key}=${value}: quoting and specifiers are not modelled`);
    return value.split(/\s+/).filter((w) => w !== '');
  };
  const environment: Record<string, string> = { PATH: SYSTEMD_PATH };
  const execStarts: string[][] = [];
  const dirs: { base: string; names: string[]; modeKey: string }[] = [];
  const modes = new Map<string, number>();
  const identity: { user?: string; group?: string; workingDirectory?: string; umask?: string } = {};
  for (const [key, value] of settings) {
    switch (key) {
      case 'User':
        identity.user = plain(key, value).join('');
        break;
      case 'Group':
        identity.group = plain(key, value).join('');
        break;
      case 'WorkingDirectory':
        identity.workingDirectory = plain(key, value).join('');
        break;
      case 'UMask':
        if (!/^[0-7]{3,4}$/.test(value)) throw new Error(`UMask=${value}: not an octal mask`);
        identity.umask = value;
        break;
      case 'Environment':
        for (const assignment of plain(key, value)) {
          const i = assignment.indexOf('=');
          environment[assignment.slice(0, i)] = assignment.slice(i + 1);
        }
        break;
      case 'ExecStart': {
        const argv = plain(key, value);
        if (/^[-@:+!]/.test(argv[0] ?? '')) throw new Error(`ExecStart prefixes are not modelled: ${value}`);
        execStarts.push(argv);
        break;
      }
      case 'StateDirectory':
        dirs.push({ base: '/var/lib', names: plain(key, value), modeKey: 'StateDirectoryMode' });
        break;
      case 'CacheDirectory':
        dirs.push({ base: '/var/cache', names: plain(key, value), modeKey: 'CacheDirectoryMode' });
        break;
      case 'StateDirectoryMode':
      case 'CacheDirectoryMode':
        modes.set(key, parseInt(value, 8));
        break;
      default:
    }
  }
  if (execStarts.length !== 1) throw new Error(`expected one ExecStart, found ${execStarts.length}`);
  return {
    ...identity,
    environment,
    argv: execStarts[0] as string[],
    directories: dirs.flatMap((d) =>
      d.names.map((n) => ({ path: `${d.base}/${n}`, mode: modes.get(d.modeKey) ?? 0o755 })),
    ),
  };
}

/**
 * A POSIX shell line that makes the directories and runs the command as systemd would (as another
 * user through util-linux's setpriv, which every Debian system has).
 */
export function shellCommand(command: ServiceCommand): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const owner =
    command.user === undefined ? undefined : `${command.user}:${command.group ?? command.user}`;
  const mkdirs = command.directories.map(
    (d) =>
      `mkdir -p ${q(d.path)} && chmod ${d.mode.toString(8)} ${q(d.path)}` +
      (owner === undefined ? '' : ` && chown ${q(owner)} ${q(d.path)}`),
  );
  const cd = command.workingDirectory === undefined ? [] : [`cd ${q(command.workingDirectory)}`];
  const umask = command.umask === undefined ? [] : [`umask ${command.umask}`];
  const as =
    command.user === undefined
      ? ''
      : `setpriv --reuid=${q(command.user)} --regid=${q(command.group ?? command.user)} --init-groups `;
  const env = Object.entries(command.environment).map(([k, v]) => q(`${k}=${v}`));
  return [...mkdirs, ...cd, ...umask, `${as}env -i ${env.join(' ')} ${command.argv.map(q).join(' ')}`].join(' && ');
}
