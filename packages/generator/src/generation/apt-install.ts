/**
 * The one command a Debian generation container runs: apt-get downloading exact versions into the
 * platform's shared download cache, then installing them from it. Pure: the command and the
 * reading of its output, tested without podman.
 *
 * Why two apt-get runs: apt locks its archives directory (`<archives>/lock`, an fcntl lock that
 * apt-get takes without waiting), and the directory is shared by every container of the platform
 * on this host. The download step runs under flock(1) on a lock file of ours in the same
 * directory, so downloads into the shared directory happen one container at a time (any process
 * on the host, the lock lives in the shared directory); the install step then only reads files
 * that are already complete there (`--no-download`), so it takes no archives lock
 * (`Debug::NoLocking`: dpkg's own lock in the container's private /var/lib/dpkg still applies)
 * and installs run side by side.
 *
 * Sharing is safe because apt checks every .deb in the archives directory against the size and
 * hash the signed index (InRelease → Packages) gives before it uses it; a file that does not match
 * is downloaded again, never installed.
 */

/** Where the shared cache is mounted in the container: apt's default archives directory. */
export const APT_ARCHIVES = '/var/cache/apt/archives';

/**
 * Our lock files in the shared directory (apt's own `lock` stays apt's): `download`, held
 * exclusively by the container that is downloading; `inUse`, held shared by every container from
 * before its download until its install ends, and exclusively by the host while it prunes the
 * cache (apt-cache.ts), so no file is deleted between a container's download and its install.
 */
export const CACHE_LOCKS = { download: 'sysattest-download.lock', inUse: 'sysattest-in-use.lock' } as const;
const DOWNLOAD_LOCK = `${APT_ARCHIVES}/${CACHE_LOCKS.download}`;
const IN_USE_LOCK = `${APT_ARCHIVES}/${CACHE_LOCKS.inUse}`;

const MARK = 'sysattest-phase';

const COMMON = [
  '--yes',
  '--no-install-recommends',
  // An older version than the image carries (a machine that is behind on updates) is a downgrade.
  '--allow-downgrades',
];

/**
 * `sh -c SCRIPT sh SPEC…`: the specs are positional parameters, never spliced into the script.
 * The script prints `sysattest-phase <name> <epoch ms>` lines so the caller can split the time.
 */
export function aptInstallCommand(specs: readonly string[]): string[] {
  const download = [
    'apt-get',
    'install',
    '--download-only',
    ...COMMON,
    // The shared directory belongs to root on the host; the sandbox user _apt may not write there.
    '-o',
    'APT::Sandbox::User=root',
  ];
  const install = [
    'apt-get',
    'install',
    '--no-download',
    ...COMMON,
    '-o',
    'Debug::NoLocking=true',
    '-o',
    'Dpkg::Options::=--force-confdef',
    '-o',
    'Dpkg::Options::=--force-confold',
    // dpkg(1): no fsync per unpacked file, "for throwaway environments": the container is
    // removed once its files are read, and a crash only loses that batch.
    '-o',
    'Dpkg::Options::=--force-unsafe-io',
  ];
  const script = [
    'set -e',
    // fd 9 keeps the shared lock for the rest of the script (both apt-get runs).
    `exec 9>${IN_USE_LOCK}`,
    'flock -s 9',
    `echo "${MARK} start $(date +%s%3N)"`,
    `flock ${DOWNLOAD_LOCK} ${download.join(' ')} "$@"`,
    `echo "${MARK} downloaded $(date +%s%3N)"`,
    // man-db's trigger rebuilds its index cache (/var/cache/man, no package's file) after every
    // install: seconds per container for nothing we sign. Its own switch (man-db's postinst and
    // trigger read this debconf answer and file).
    `echo 'man-db man-db/auto-update boolean false' | debconf-set-selections`,
    'rm -f /var/lib/man-db/auto-update',
    `${install.join(' ')} "$@"`,
    `echo "${MARK} installed $(date +%s%3N)"`,
  ].join('\n');
  return ['/bin/sh', '-c', script, 'sh', ...specs];
}

export interface AptPhases {
  /** Downloading into the shared cache, waiting for its lock included. */
  downloadMs: number;
  /** apt-get install from the cache: unpacking, maintainer scripts, triggers. */
  installMs: number;
}

/** The phase durations the command's markers give; zeros for the phases it did not reach. */
export function aptPhases(stdout: string): AptPhases {
  const at = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const m = new RegExp(`^${MARK} (\\w+) (\\d+)$`).exec(line.trim());
    if (m) at.set(m[1] as string, Number(m[2]));
  }
  const span = (from: string, to: string) => {
    const a = at.get(from);
    const b = at.get(to);
    return a !== undefined && b !== undefined && b >= a ? b - a : 0;
  };
  return { downloadMs: span('start', 'downloaded'), installMs: span('downloaded', 'installed') };
}
