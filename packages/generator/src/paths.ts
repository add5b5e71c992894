import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Where the generator keeps its state unless told otherwise. SYSATTEST_GENERATOR_HOME overrides
 * the whole directory; the default follows the XDG base-directory spec.
 */
export function generatorHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SYSATTEST_GENERATOR_HOME) return path.resolve(env.SYSATTEST_GENERATOR_HOME);
  const dataHome = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'sysattest', 'generator');
}

/**
 * The platform's shared apt download cache (`<home>/apt-cache/<distro>-<release>-<arch>`), which
 * Debian generation bind-mounts at every container's /var/cache/apt/archives.
 */
export function aptCacheDir(home: string, platformId: string): string {
  return path.join(home, 'apt-cache', platformId.replace(/\//g, '-'));
}

/** The signing key file: `--key`, else SYSATTEST_GENERATOR_KEY, else `<home>/signing-key.asc`. */
export function signingKeyPath(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(
    option ?? env.SYSATTEST_GENERATOR_KEY ?? path.join(generatorHome(env), 'signing-key.asc'),
  );
}
