/**
 * What the client's Debian package `sysattest` is, as data: its control file, its maintainer
 * scripts, and where each piece goes. No I/O here (build-deb.ts writes it out), so the rules can
 * be read and tested without dpkg.
 *
 * Layout (Debian policy 9.1, and systemd units in /usr/lib so a merged-/usr system has one name
 * for each):
 *   /usr/bin/sysattest                       the launcher: the bundled client on the bundled Node
 *   /usr/lib/sysattest/node                  Node's official linux-x64 build (node-runtime.ts)
 *   /usr/lib/sysattest/app/                  the client bundle and @napi-rs/xattr (client-bundle.ts)
 *   /usr/lib/systemd/system/sysattest-verify.{service,timer}
 *   /etc/sysattest/client.json               a conffile: dpkg keeps the operator's edits
 *   /usr/share/doc/sysattest/                copyright, README, changelog
 * State the package does not own: /var/lib/sysattest-client (pinned keys and the cache seal key,
 * made by `sysattest trust add` or by the unit's StateDirectory=; the report spool,
 * `report-spool/`), /var/cache/sysattest (CacheDirectory=) and the host's reporter token, which the
 * operator puts in /etc/sysattest/reporter-token (root's, mode 0600) to enrol the host; all are
 * removed on purge.
 */

export const PACKAGE_NAME = 'sysattest';
export const LIB_DIR = '/usr/lib/sysattest';
export const APP_DIR = `${LIB_DIR}/app`;
export const LAUNCHER = '/usr/bin/sysattest';
export const CONFIG_FILE = '/etc/sysattest/client.json';
export const STATE_DIR = '/var/lib/sysattest-client';
export const CACHE_DIR = '/var/cache/sysattest';
export const UNIT_DIR = '/usr/lib/systemd/system';
/** Where the operator puts the host's reporter token (README: Enrol a host). */
export const REPORTER_TOKEN_FILE = '/etc/sysattest/reporter-token';

/**
 * The packaged client's settings. Pinned keys and the cache seal key live in the state directory
 * the verify unit may write under ProtectSystem=strict (StateDirectory=sysattest-client), not in
 * /etc, which the sandbox makes read-only: there the seal key could never be made, and every run
 * would verify every manifest in full again. The report spool is in the state directory for the
 * same reason. The server URL is the operator's to add; reporting is off until the operator turns
 * it on (`"report": true`) and puts the host's reporter token at REPORTER_TOKEN_FILE.
 */
export const DEFAULT_CLIENT_CONFIG = {
  trustDir: `${STATE_DIR}/trusted-keys`,
  cacheDir: CACHE_DIR,
  stateDir: STATE_DIR,
  timeoutSeconds: 60,
  report: false,
  reportTokenFile: REPORTER_TOKEN_FILE,
};

export interface ControlInput {
  version: string;
  /** Debian architecture (`amd64`). */
  architecture: string;
  /** Installed size in KiB (dpkg's unit), rounded up. */
  installedSizeKiB: number;
  nodeVersion: string;
}

/**
 * The binary package's control file (deb-control(5)). The dependencies are those of the bundled
 * runtime and native module, read from their dynamic symbol versions: glibc 2.28 (GLIBC_2.28),
 * libstdc++ from GCC 5 (GLIBCXX_3.4.21), libgcc_s.
 */
export function controlFile(input: ControlInput): string {
  const fields: [string, string][] = [
    ['Package', PACKAGE_NAME],
    ['Version', input.version],
    ['Architecture', input.architecture],
    ['Maintainer', 'sysattest developers <sysattest@invalid>'],
    ['Installed-Size', String(input.installedSizeKiB)],
    ['Depends', 'libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1 | libgcc1'],
    ['Section', 'admin'],
    ['Priority', 'optional'],
    [
      'Description',
      [
        'verify installed package files against signed manifests',
        "sysattest checks that the files installed by this machine's packages are exactly",
        'what the distribution shipped, against manifests signed by a sysattest generator',
        'whose OpenPGP key you pinned. The package brings its own Node.js runtime',
        `(${input.nodeVersion}) under ${LIB_DIR}; nothing is compiled on this machine.`,
        'A systemd timer (sysattest-verify.timer) runs the check nightly once enabled.',
      ].join('\n '),
    ],
  ];
  return fields.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
}

/** dpkg keeps the operator's version of these on upgrade, and asks when both changed. */
export function conffiles(): string {
  return `${CONFIG_FILE}\n`;
}

/** The launcher: the bundled client on the bundled runtime, whatever `node` the PATH has. */
export function launcherScript(): string {
  return `#!/bin/sh\nexec ${LIB_DIR}/node ${APP_DIR}/sysattest.js "$@"\n`;
}

/**
 * Maintainer scripts (Debian policy 6): systemd is told about new or removed unit files when it
 * runs (a container or a chroot has none); the timer is never enabled by the package, since a
 * check needs a pinned key and a server first (README: Install). Purge removes the state.
 */
export function maintainerScripts(): Record<'postinst' | 'prerm' | 'postrm', string> {
  const reload = 'if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi';
  return {
    postinst: `#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  ${reload}\nfi\n`,
    prerm:
      '#!/bin/sh\nset -e\n' +
      'if [ "$1" = remove ] && [ -d /run/systemd/system ]; then\n' +
      '  systemctl stop sysattest-verify.timer sysattest-verify.service || true\n' +
      '  systemctl disable sysattest-verify.timer || true\nfi\n',
    postrm:
      `#!/bin/sh\nset -e\n${reload}\n` +
      `if [ "$1" = purge ]; then\n  rm -rf ${STATE_DIR} ${CACHE_DIR}\n  rm -f ${REPORTER_TOKEN_FILE}\n` +
      `  rmdir --ignore-fail-on-non-empty /etc/sysattest 2>/dev/null || true\nfi\n`,
  };
}

/** The unit files under deploy/ that the package installs. */
export const UNIT_FILES = ['sysattest-verify.service', 'sysattest-verify.timer'] as const;
