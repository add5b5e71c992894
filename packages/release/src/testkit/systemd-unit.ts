/**
 * What systemd does before it starts a oneshot service, for the parts the client's verify unit
 * uses (systemd.exec(5)): a clean environment plus `Environment=`, the directories of
 * `StateDirectory=` and `CacheDirectory=` made with their modes, then `ExecStart=`. Tests use it
 * to run the installed unit's command line where systemd does not run (a container), exactly as
 * the unit file says.
 */
export interface ServiceCommand {
  environment: Record<string, string>;
  argv: string[];
  /** Absolute paths and modes, made before the command runs. */
  directories: { path: string; mode: number }[];
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
  for (const [key, value] of settings) {
    switch (key) {
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
    environment,
    argv: execStarts[0] as string[],
    directories: dirs.flatMap((d) =>
      d.names.map((n) => ({ path: `${d.base}/${n}`, mode: modes.get(d.modeKey) ?? 0o755 })),
    ),
  };
}

/** A POSIX shell line that makes the directories and runs the command as systemd would. */
export function shellCommand(command: ServiceCommand): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const mkdirs = command.directories.map(
    (d) => `mkdir -p ${q(d.path)} && chmod ${d.mode.toString(8)} ${q(d.path)}`,
  );
  const env = Object.entries(command.environment).map(([k, v]) => q(`${k}=${v}`));
  return [...mkdirs, `env -i ${env.join(' ')} ${command.argv.map(q).join(' ')}`].join(' && ');
}
