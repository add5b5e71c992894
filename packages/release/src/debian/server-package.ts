/**
 * What the service's Debian package `sysattest-server` is, as data: the server and the generator
 * (whose `work` command is the worker) on their own Node runtime, their systemd units, the
 * server's configuration. No I/O here (build-server-deb.ts writes it out).
 *
 * Layout:
 *   /usr/bin/sysattest-server, /usr/bin/sysattest-generator   launchers: the bundle on the runtime
 *   /usr/lib/sysattest-server/node                            Node's official linux-x64 build
 *   /usr/lib/sysattest-server/app/                            the bundle, better-sqlite3, @napi-rs/xattr
 *   /usr/lib/sysattest-server/assets/                         the dashboard's CSS and JavaScript
 *   /usr/lib/systemd/system/sysattest-server.service, sysattest-generator-worker.service
 *   /etc/sysattest/server.json                                a conffile
 *   /usr/share/doc/sysattest-server/                          copyright, README, changelog, examples
 * The server runs as the system user `sysattest` (made by postinst) with its database and the
 * dashboard's session secret in /var/lib/sysattest (the unit's StateDirectory=); the worker runs
 * as root (podman) with its state in /var/lib/sysattest-generator. Neither unit is enabled by the
 * package: the server's database and the worker's key and token are the operator's to choose.
 * Purge removes the configuration, never the database.
 */

export const SERVER_PACKAGE = 'sysattest-server';
export const SERVER_LIB_DIR = '/usr/lib/sysattest-server';
export const SERVER_APP_DIR = `${SERVER_LIB_DIR}/app`;
export const SERVER_ASSETS_DIR = `${SERVER_LIB_DIR}/assets`;
export const SERVER_CONFIG_FILE = '/etc/sysattest/server.json';
export const SERVER_STATE_DIR = '/var/lib/sysattest';
export const SERVER_USER = 'sysattest';

/** Each program's launcher and the bundle file it runs. */
export const SERVER_LAUNCHERS = {
  '/usr/bin/sysattest-server': 'sysattest-server.js',
  '/usr/bin/sysattest-generator': 'sysattest-generator.js',
} as const;

/** The unit files under deploy/ that the package installs. */
export const SERVER_UNIT_FILES = ['sysattest-server.service', 'sysattest-generator-worker.service'] as const;

/** Examples installed under the documentation (the worker's settings are the operator's to write). */
export const SERVER_EXAMPLES = ['server.example.json', 'generator.example.json'] as const;

/**
 * The packaged server's settings: loopback only until the operator opens it, the SQLite database
 * in the state directory (the dashboard's session secret is made beside it on first start).
 */
export const DEFAULT_SERVER_CONFIG = {
  host: '127.0.0.1',
  port: 8080,
  database: `${SERVER_STATE_DIR}/sysattest.db`,
};

export interface ServerControlInput {
  version: string;
  architecture: string;
  installedSizeKiB: number;
  nodeVersion: string;
}

/**
 * The control file. Depends: those of the runtime and the native modules (glibc 2.28, libstdc++
 * from GCC 5, libgcc_s; better-sqlite3 is built against the same runtime), and passwd for the
 * system user. podman and mmdebstrap are only the worker's.
 */
export function serverControlFile(input: ServerControlInput): string {
  const fields: [string, string][] = [
    ['Package', SERVER_PACKAGE],
    ['Version', input.version],
    ['Architecture', input.architecture],
    ['Maintainer', 'sysattest developers <sysattest@invalid>'],
    ['Installed-Size', String(input.installedSizeKiB)],
    ['Depends', 'libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1 | libgcc1, passwd'],
    ['Suggests', 'podman, mmdebstrap, postgresql'],
    ['Section', 'admin'],
    ['Priority', 'optional'],
    [
      'Description',
      [
        'sysattest server and generator worker',
        'sysattest-server stores the signed manifests and catalogs a sysattest generator',
        'makes, queues generation jobs and answers the sysattest clients of a fleet;',
        'sysattest-generator makes the manifests (its work command is the worker, which',
        `needs podman). The package brings its own Node.js runtime (${input.nodeVersion})`,
        `under ${SERVER_LIB_DIR}; nothing is compiled on this machine.`,
      ].join('\n '),
    ],
  ];
  return fields.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
}

export function serverConffiles(): string {
  return `${SERVER_CONFIG_FILE}\n`;
}

export function serverLauncher(script: string): string {
  return `#!/bin/sh\nexec ${SERVER_LIB_DIR}/node ${SERVER_APP_DIR}/${script} "$@"\n`;
}

/**
 * Maintainer scripts: the system user the server runs as (useradd, from passwd, which every
 * Debian system has), systemd told about the units when it runs, the units stopped on removal.
 */
export function serverMaintainerScripts(): Record<'postinst' | 'prerm' | 'postrm', string> {
  const reload = 'if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi';
  const units = SERVER_UNIT_FILES.join(' ');
  return {
    postinst:
      '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n' +
      `  if ! getent passwd ${SERVER_USER} >/dev/null; then\n` +
      `    useradd --system --user-group --home-dir ${SERVER_STATE_DIR} --no-create-home --shell /usr/sbin/nologin --comment "sysattest server" ${SERVER_USER}\n` +
      '  fi\n' +
      `  ${reload}\nfi\n`,
    prerm:
      '#!/bin/sh\nset -e\n' +
      'if [ "$1" = remove ] && [ -d /run/systemd/system ]; then\n' +
      `  systemctl stop ${units} || true\nfi\n`,
    postrm: `#!/bin/sh\nset -e\n${reload}\n`,
  };
}
