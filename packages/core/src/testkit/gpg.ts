/**
 * Test helper (not exported from the package): runs the real GnuPG in a throw-away GNUPGHOME, so
 * tests never touch the user's keyring.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GpgResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface GpgHome {
  home: string;
  /** Runs gpg with --batch, loopback pinentry and this home; never throws for a non-zero exit. */
  run(args: readonly string[], options?: { input?: string; passphrase?: string }): Promise<GpgResult>;
  /** Like run, but throws (with gpg's stderr) unless gpg exits 0. */
  ok(args: readonly string[], options?: { input?: string; passphrase?: string }): Promise<GpgResult>;
  /** Fingerprint of the first primary key matching `userId`. */
  fingerprint(userId: string): Promise<string>;
  /** Fingerprints (primary first, then subkeys) of the key matching `userId`. */
  fingerprints(userId: string): Promise<string[]>;
  /** Stops this home's gpg-agent and deletes the directory. */
  cleanup(): Promise<void>;
}

function spawnCollect(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<GpgResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

export async function makeGpgHome(): Promise<GpgHome> {
  const home = await mkdtemp(join(tmpdir(), 'sysattest-gpg-'));
  const env = { ...process.env, GNUPGHOME: home, LC_ALL: 'C', TZ: 'UTC' };
  const run = (args: readonly string[], options: { input?: string; passphrase?: string } = {}) =>
    spawnCollect(
      'gpg',
      [
        '--batch',
        '--no-tty',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        options.passphrase ?? '',
        '--no-auto-check-trustdb',
        ...args,
      ],
      env,
      options.input,
    );
  const ok = async (args: readonly string[], options?: { input?: string; passphrase?: string }) => {
    const r = await run(args, options);
    if (r.code !== 0) throw new Error(`gpg ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r;
  };
  const fingerprints = async (userId: string) => {
    const r = await ok(['--with-colons', '--list-keys', userId]);
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('fpr:'))
      .map((l) => l.split(':')[9] ?? '');
  };
  return {
    home,
    run,
    ok,
    fingerprints,
    fingerprint: async (userId) => {
      const [first] = await fingerprints(userId);
      if (first === undefined) throw new Error(`no key for ${userId}`);
      return first;
    },
    cleanup: async () => {
      await spawnCollect('gpgconf', ['--kill', 'gpg-agent'], env).catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** The fingerprint named by gpg's VALIDSIG status line (format: GnuPG doc/DETAILS). */
export function validSigFingerprints(statusOutput: string): { signer: string; primary: string } | undefined {
  const line = statusOutput.split('\n').find((l) => l.startsWith('[GNUPG:] VALIDSIG '));
  if (line === undefined) return undefined;
  const f = line.trim().split(/\s+/);
  // [GNUPG:] VALIDSIG <fpr> <date> <ts> <expire> <ver> <reserved> <pkalgo> <hashalgo> <class> <primary-fpr>
  return { signer: f[2] ?? '', primary: f[11] ?? '' };
}
