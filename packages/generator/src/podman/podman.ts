import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { GeneratorError } from '../errors.js';
import { throwIfAborted } from './interrupt.js';
import { describeCommand, spawnCapture, stderrTail, type SpawnResult } from './process.js';
import { makeTempDir, removeTempDir } from './tempdir.js';

/**
 * Every container the generator creates carries this label (`sysattest=1`), so leftovers of a
 * crashed process can be listed and removed: `podman ps -a --filter label=sysattest=1`.
 */
export const SYSATTEST_LABEL = 'sysattest';
export const SYSATTEST_LABEL_VALUE = '1';
export const SYSATTEST_LABEL_FILTER = `${SYSATTEST_LABEL}=${SYSATTEST_LABEL_VALUE}`;

/** What to do on a host where podman is installed but cannot run containers. */
export const PODMAN_SETUP_HINT =
  'this host needs a containers.conf with runtime = "runc" and default_ulimits within its hard limits: ' +
  'run scripts/podman-setup.sh as root (see the README), or point CONTAINERS_CONF at such a file';

export const PODMAN_INSTALL_HINT =
  'install podman (apt-get install podman runc), or run scripts/podman-setup.sh as root';

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
const PROBE_COMMAND = '/sysattest-probe-does-not-exist';

export interface PodmanOptions {
  /** The podman executable (default `$SYSATTEST_PODMAN`, else `podman` from PATH). */
  binary?: string;
  /** podman's environment (default: this process's; CONTAINERS_CONF and friends pass through). */
  env?: NodeJS.ProcessEnv;
  /** Time limit for a podman command without its own (default 10 minutes). */
  timeoutMs?: number;
  /** Told every command line before it runs (debugging). */
  log?: (line: string) => void;
  /** Labels added to every container this driver creates, besides `sysattest=1`. */
  labels?: Record<string, string>;
}

export interface CommandOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface PodmanInfo {
  version: string;
  /** OCI runtime podman uses (`runc`, `crun`). */
  runtime: string;
  cgroupVersion: string;
  graphDriver: string;
  rootless: boolean;
}

export interface ImageInfo {
  /** Full image id, 64 hex digits without `sha256:`. */
  id: string;
  /** Manifest digest (`sha256:…`), when podman knows one. */
  digest: string | null;
  repoTags: string[];
  created: string;
  architecture: string;
  os: string;
  variant: string | null;
  size: number;
  cmd: string[] | null;
  entrypoint: string[] | null;
  env: string[];
  labels: Record<string, string>;
}

export interface ContainerSummary {
  id: string;
  names: string[];
  image: string;
  imageId: string;
  state: string;
  labels: Record<string, string>;
  /** Creation time, ISO 8601. */
  created: string;
}

export interface ExecOptions extends CommandOptions {
  /** Bytes for the command's stdin (podman gets `--interactive`). */
  input?: string | Buffer;
  env?: Record<string, string>;
  user?: string;
  workdir?: string;
  /** Resolve with the result instead of throwing when the command exits non-zero. */
  allowFailure?: boolean;
  /** Each output line as it arrives (progress). */
  onOutputLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  maxStdoutBytes?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface CreateContainerOptions extends CommandOptions {
  name?: string;
  /** `none` for no network; default podman's default network. */
  network?: string;
  env?: Record<string, string>;
  /** Extra labels; `sysattest=1` is always added. */
  labels?: Record<string, string>;
  /**
   * The container's command. Default `sleep infinity`: the image's own coreutils keeps the
   * container alive for `exec` (no entrypoint or tool of ours goes into the image).
   */
  command?: string[];
  /** Run podman's own init (catatonit) as PID 1 to reap zombies. */
  init?: boolean;
  /** Host directories bind-mounted into the container (read-write). */
  volumes?: { host: string; container: string }[];
}

export interface RunOptions extends ExecOptions {
  network?: string;
  labels?: Record<string, string>;
}

export interface ImportOptions extends CommandOptions {
  /** The new image's name (`localhost/sysattest/debian:bookworm-amd64`). */
  tag: string;
  /** Dockerfile instructions for the image config (`ENV K=V`, `LABEL K=V`). */
  changes?: string[];
  /** OCI architecture the image records (`amd64`, `arm64`); default the host's. */
  arch?: string;
  variant?: string;
  message?: string;
}

/**
 * Why podman cannot run containers on this host, as its stderr tells, or undefined. Only podman's
 * own `Error: …` lines count (a command's output inside the container is not podman's verdict).
 */
export function podmanMisconfiguration(stderr: string): string | undefined {
  const errors = stderr
    .split('\n')
    .filter((l) => l.startsWith('Error: '))
    .join('\n');
  if (/cgroups in hybrid mode/i.test(errors)) {
    return `the OCI runtime crun does not support this host's cgroups ("cgroups in hybrid mode not supported"); ${PODMAN_SETUP_HINT}`;
  }
  const rlimit = /(?:setrlimit|error setting rlimit)[^\n]*/i.exec(errors);
  if (rlimit) {
    const what = rlimit[0].length > 100 ? `${rlimit[0].slice(0, 99)}…` : rlimit[0];
    return `podman's default rlimits exceed this host's hard limits ("${what}"); ${PODMAN_SETUP_HINT}`;
  }
  const runtime = /default OCI runtime "([^"]+)" not found/i.exec(errors);
  if (runtime) {
    return `podman's OCI runtime ${runtime[1]} is not installed; ${PODMAN_SETUP_HINT}`;
  }
  return undefined;
}

function isSpawnNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR';
}

/** Refuses names that podman would read as options. */
function assertRef(kind: string, ref: string): void {
  if (
    typeof ref !== 'string' ||
    ref.length === 0 ||
    ref.startsWith('-') ||
    /[\s\0]/.test(ref) ||
    ref.length > 512
  ) {
    throw new GeneratorError(
      'INVALID_ARGUMENT',
      `invalid ${kind} ${JSON.stringify(String(ref).slice(0, 80))}`,
    );
  }
}

function normalizeId(s: string, what: string): string {
  const id =
    s
      .trim()
      .split('\n')
      .pop()
      ?.trim()
      .replace(/^sha256:/, '') ?? '';
  if (!/^[0-9a-f]{64}$/.test(id)) {
    throw new GeneratorError(
      'PODMAN_FAILED',
      `podman printed no ${what} id (got ${JSON.stringify(s.slice(0, 120))})`,
    );
  }
  return id;
}

function stringArray(v: unknown): string[] | null {
  if (!Array.isArray(v)) return null;
  return v.filter((x): x is string => typeof x === 'string');
}

function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v as Record<string, unknown>))
      if (typeof val === 'string') out[k] = val;
  }
  return out;
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

/** The podman CLI, driven with argv arrays (never a shell), bounded output and time limits. */
export class Podman {
  readonly binary: string;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly timeoutMs: number;
  private readonly log: ((line: string) => void) | undefined;
  private readonly labels: Record<string, string>;
  private checked: Promise<PodmanInfo> | undefined;

  constructor(opts: PodmanOptions = {}) {
    this.binary = opts.binary ?? (process.env.SYSATTEST_PODMAN || 'podman');
    this.env = opts.env;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = opts.log;
    this.labels = opts.labels ?? {};
  }

  /** `--label` arguments: `sysattest=1`, this driver's labels, then the call's. */
  private labelArgs(extra: Record<string, string> = {}): string[] {
    const args = ['--label', SYSATTEST_LABEL_FILTER];
    for (const [k, v] of Object.entries({ ...this.labels, ...extra })) {
      if (k === SYSATTEST_LABEL) continue;
      args.push('--label', `${k}=${v}`);
    }
    return args;
  }

  /**
   * Runs `podman args…`. Throws PODMAN_MISSING when podman cannot be started, INTERRUPTED when
   * aborted, PODMAN_TIMEOUT past the time limit, and (unless `allowFailure`) PODMAN_MISCONFIGURED
   * or PODMAN_FAILED for a non-zero exit, with the tail of podman's stderr.
   */
  async command(
    args: string[],
    opts: CommandOptions & {
      allowFailure?: boolean;
      input?: string | Buffer;
      maxStdoutBytes?: number;
      onOutputLine?: (line: string, stream: 'stdout' | 'stderr') => void;
    } = {},
  ): Promise<SpawnResult> {
    throwIfAborted(opts.signal);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    this.log?.(describeCommand(this.binary, args, 1000));
    let r: SpawnResult;
    try {
      r = await spawnCapture(this.binary, args, {
        env: this.env,
        input: opts.input,
        timeoutMs,
        signal: opts.signal,
        maxStdoutBytes: opts.maxStdoutBytes,
        onStdoutLine: opts.onOutputLine ? (l) => opts.onOutputLine!(l, 'stdout') : undefined,
        onStderrLine: opts.onOutputLine ? (l) => opts.onOutputLine!(l, 'stderr') : undefined,
      });
    } catch (e) {
      if (isSpawnNotFound(e)) {
        throw new GeneratorError(
          'PODMAN_MISSING',
          `podman is not installed (cannot run ${this.binary}: ${(e as NodeJS.ErrnoException).code}): ${PODMAN_INSTALL_HINT}`,
          { cause: e },
        );
      }
      throw new GeneratorError('PODMAN_FAILED', `cannot run ${this.binary}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (r.aborted) throwIfAborted(opts.signal);
    if (r.timedOut) {
      throw new GeneratorError(
        'PODMAN_TIMEOUT',
        `${describeCommand('podman', args)} did not finish within ${Math.round(timeoutMs / 1000)} s and was killed`,
      );
    }
    if (r.code !== 0 && !opts.allowFailure) throw this.failure(args, r);
    return r;
  }

  /** The error for a podman command that exited non-zero. */
  failure(args: readonly string[], r: SpawnResult, what?: string): GeneratorError {
    const misconfigured = podmanMisconfiguration(r.stderr);
    if (misconfigured) {
      return new GeneratorError(
        'PODMAN_MISCONFIGURED',
        `podman cannot run containers on this host: ${misconfigured}`,
      );
    }
    const status =
      r.code === null ? `was killed by ${r.exitSignal ?? 'a signal'}` : `failed (exit ${r.code})`;
    const tail = stderrTail(r.stderr) || 'no error output';
    return new GeneratorError(
      'PODMAN_FAILED',
      `${what ?? describeCommand('podman', args)} ${status}: ${tail}`,
    );
  }

  /**
   * Is podman installed, and can it run a container here? Checked once per instance: `podman
   * version`, `podman info`, then a container whose root is an empty directory and whose command
   * does not exist, which a working runtime reports as "not found" (exit 127) while a
   * misconfigured one fails earlier. Needs no image and no network.
   */
  check(opts: CommandOptions = {}): Promise<PodmanInfo> {
    this.checked ??= this.runCheck(opts);
    // A failed check is not cached: the user may fix the host and retry in the same process.
    this.checked.catch(() => {
      this.checked = undefined;
    });
    return this.checked;
  }

  private async runCheck(opts: CommandOptions): Promise<PodmanInfo> {
    const version = await this.command(['version', '--format', '{{.Client.Version}}'], {
      ...opts,
      allowFailure: true,
      timeoutMs: 60_000,
    });
    if (version.code !== 0) {
      throw new GeneratorError(
        'PODMAN_MISCONFIGURED',
        `podman is installed but does not work: ${podmanMisconfiguration(version.stderr) ?? (stderrTail(version.stderr) || `podman version exited ${version.code}`)}`,
      );
    }
    const infoRun = await this.command(['info', '--format', 'json'], {
      ...opts,
      allowFailure: true,
      timeoutMs: 60_000,
    });
    if (infoRun.code !== 0) {
      throw new GeneratorError(
        'PODMAN_MISCONFIGURED',
        `podman info fails: ${podmanMisconfiguration(infoRun.stderr) ?? stderrTail(infoRun.stderr)}`,
      );
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = obj(JSON.parse(infoRun.stdout));
    } catch {
      throw new GeneratorError('PODMAN_FAILED', 'podman info printed something that is not JSON');
    }
    const host = obj(parsed.host);
    const info: PodmanInfo = {
      version: version.stdout.trim(),
      runtime: str(obj(host.ociRuntime).name, 'unknown'),
      cgroupVersion: str(host.cgroupVersion, 'unknown'),
      graphDriver: str(obj(parsed.store).graphDriverName, 'unknown'),
      rootless: obj(host.security).rootless === true,
    };

    const dir = await makeTempDir('podman-probe');
    try {
      const probe = await this.command(
        [
          'run',
          '--rm',
          '--pull=never',
          '--network=none',
          ...this.labelArgs(),
          '--rootfs',
          dir,
          PROBE_COMMAND,
        ],
        { ...opts, allowFailure: true, timeoutMs: 120_000 },
      );
      if (probe.code !== 127) {
        const why =
          podmanMisconfiguration(probe.stderr) ??
          `a test container did not run (exit ${probe.code}: ${stderrTail(probe.stderr) || 'no error output'}); run scripts/podman-setup.sh as root`;
        throw new GeneratorError('PODMAN_MISCONFIGURED', `podman cannot run containers on this host: ${why}`);
      }
    } finally {
      await removeTempDir(dir);
    }
    return info;
  }

  async version(opts: CommandOptions = {}): Promise<string> {
    return (await this.command(['version', '--format', '{{.Client.Version}}'], opts)).stdout.trim();
  }

  // ---- images ---------------------------------------------------------------------------------

  /** `podman import`: a root filesystem tarball becomes an image; returns its id. */
  async importImage(tarPath: string, opts: ImportOptions): Promise<string> {
    assertRef('image tag', opts.tag);
    const args = ['import', '--quiet'];
    if (opts.arch) args.push('--arch', opts.arch);
    if (opts.variant) args.push('--variant', opts.variant);
    for (const c of opts.changes ?? []) args.push('--change', c);
    if (opts.message) args.push('--message', opts.message);
    // An absolute path, so podman never mistakes it for a URL to download.
    args.push(path.resolve(tarPath), opts.tag);
    const r = await this.command(args, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30 * 60 * 1000 });
    return normalizeId(r.stdout, 'image');
  }

  /** `podman pull`: fetches an image from a registry; returns its id. */
  async pullImage(ref: string, opts: CommandOptions & { arch?: string } = {}): Promise<string> {
    assertRef('image', ref);
    const args = ['pull', '--quiet'];
    if (opts.arch) args.push('--arch', opts.arch);
    args.push(ref);
    const r = await this.command(args, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30 * 60 * 1000 });
    return normalizeId(r.stdout, 'image');
  }

  async tagImage(ref: string, tag: string, opts: CommandOptions = {}): Promise<void> {
    assertRef('image', ref);
    assertRef('image tag', tag);
    await this.command(['tag', ref, tag], opts);
  }

  /** Image metadata; throws IMAGE_NOT_FOUND when podman has no such image. */
  async imageInspect(ref: string, opts: CommandOptions = {}): Promise<ImageInfo> {
    assertRef('image', ref);
    const r = await this.command(['image', 'inspect', '--format', 'json', ref], {
      ...opts,
      allowFailure: true,
    });
    if (r.code !== 0) {
      if (/image not known|no such image|failed to find image/i.test(r.stderr)) {
        throw new GeneratorError('IMAGE_NOT_FOUND', `podman has no image ${ref}`);
      }
      throw this.failure(['image', 'inspect', ref], r);
    }
    let list: unknown;
    try {
      list = JSON.parse(r.stdout);
    } catch {
      throw new GeneratorError(
        'PODMAN_FAILED',
        `podman image inspect ${ref} printed something that is not JSON`,
      );
    }
    const first = obj(Array.isArray(list) ? list[0] : undefined);
    const config = obj(first.Config);
    const id = str(first.Id);
    if (!/^[0-9a-f]{64}$/.test(id))
      throw new GeneratorError('PODMAN_FAILED', `podman image inspect ${ref}: no image id`);
    return {
      id,
      digest: str(first.Digest) || null,
      repoTags: stringArray(first.RepoTags) ?? [],
      created: str(first.Created),
      architecture: str(first.Architecture),
      os: str(first.Os),
      variant: str(first.Variant) || null,
      size: typeof first.Size === 'number' ? first.Size : 0,
      cmd: stringArray(config.Cmd),
      entrypoint: stringArray(config.Entrypoint),
      env: stringArray(config.Env) ?? [],
      labels: stringRecord(config.Labels),
    };
  }

  async imageExists(ref: string, opts: CommandOptions = {}): Promise<boolean> {
    assertRef('image', ref);
    const r = await this.command(['image', 'exists', ref], { ...opts, allowFailure: true });
    if (r.code === 0) return true;
    if (r.code === 1) return false;
    throw this.failure(['image', 'exists', ref], r);
  }

  /**
   * `podman rmi`: removes a tag, or the image when it is the last name. Returns false when there
   * was no such image and `ignoreMissing` is set. Without `force` an image that a container uses
   * is not removed (PODMAN_FAILED); with it podman also removes those containers.
   */
  async removeImage(
    ref: string,
    opts: CommandOptions & { force?: boolean; ignoreMissing?: boolean } = {},
  ): Promise<boolean> {
    assertRef('image', ref);
    const args = ['rmi', ...(opts.force ? ['--force'] : []), ref];
    const r = await this.command(args, { ...opts, allowFailure: true });
    if (r.code === 0) return true;
    if (opts.ignoreMissing && /image not known|no such image/i.test(r.stderr)) return false;
    throw this.failure(args, r);
  }

  // ---- containers -----------------------------------------------------------------------------

  /**
   * `podman create`: a container from `image`, labelled `sysattest=1`, with podman's default
   * (unprivileged) capabilities: no --privileged, no added capabilities. That is enough for apt
   * and dpkg, which run as root inside and only need to chown, set file capabilities and drop to
   * the `_apt` user. Never pulls: images are local. Returns the container id.
   */
  async createContainer(image: string, opts: CreateContainerOptions = {}): Promise<string> {
    assertRef('image', image);
    const args = ['create', '--pull=never', ...this.labelArgs(opts.labels)];
    if (opts.name) {
      assertRef('container name', opts.name);
      args.push('--name', opts.name);
    }
    if (opts.network) args.push('--network', opts.network);
    for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
    if (opts.init) args.push('--init');
    for (const v of opts.volumes ?? []) {
      if (!path.isAbsolute(v.host) || !path.isAbsolute(v.container) || /[,:]/.test(v.host + v.container)) {
        throw new GeneratorError('PODMAN_FAILED', `cannot bind-mount ${v.host} at ${v.container}`);
      }
      args.push('--volume', `${v.host}:${v.container}`);
    }
    args.push(image, ...(opts.command ?? ['sleep', 'infinity']));
    const r = await this.command(args, opts);
    return normalizeId(r.stdout, 'container');
  }

  async startContainer(container: string, opts: CommandOptions = {}): Promise<void> {
    assertRef('container', container);
    await this.command(['start', container], opts);
  }

  /**
   * `podman start --attach`: runs a created container's own command to its end and returns its
   * exit status and output (the container stays, stopped, so its filesystem can be mounted and
   * read). A non-zero exit of the command is returned, not thrown.
   */
  async startAttached(
    container: string,
    opts: CommandOptions & { onOutputLine?: (line: string, stream: 'stdout' | 'stderr') => void } = {},
  ): Promise<ExecResult> {
    assertRef('container', container);
    const args = ['start', '--attach', container];
    const r = await this.command(args, { ...opts, allowFailure: true });
    return this.commandResult(args, r, ['(its command)'], `in container ${container.slice(0, 12)}`, true);
  }

  /**
   * `podman exec`: runs `argv` (no shell) in a running container. A non-zero exit throws
   * PODMAN_FAILED naming the command and the tail of its stderr, unless `allowFailure`.
   */
  async exec(container: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    assertRef('container', container);
    if (argv.length === 0) throw new GeneratorError('INVALID_ARGUMENT', 'exec needs a command');
    const args = ['exec'];
    if (opts.input !== undefined) args.push('--interactive');
    for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
    if (opts.user) args.push('--user', opts.user);
    if (opts.workdir) args.push('--workdir', opts.workdir);
    args.push(container, ...argv);
    const r = await this.command(args, { ...opts, allowFailure: true });
    return this.commandResult(args, r, argv, `in container ${container.slice(0, 12)}`, opts.allowFailure);
  }

  /**
   * `podman run --rm`: a one-shot container (labelled, no pull) running `argv`. The container has
   * a name of ours, so it is removed even when this run is interrupted or times out.
   */
  async run(image: string, argv: string[], opts: RunOptions = {}): Promise<ExecResult> {
    assertRef('image', image);
    if (argv.length === 0) throw new GeneratorError('INVALID_ARGUMENT', 'run needs a command');
    const name = `sysattest-run-${randomBytes(6).toString('hex')}`;
    // --sig-proxy=false: stopping this client must not just forward the signal to a command that
    // ignores it (PID 1 does); the container is removed by name below instead.
    const args = [
      'run',
      '--rm',
      '--pull=never',
      '--sig-proxy=false',
      '--name',
      name,
      ...this.labelArgs(opts.labels),
    ];
    if (opts.network) args.push('--network', opts.network);
    for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
    if (opts.user) args.push('--user', opts.user);
    if (opts.workdir) args.push('--workdir', opts.workdir);
    if (opts.input !== undefined) args.push('--interactive');
    args.push(image, ...argv);
    let clean = false;
    try {
      const r = await this.command(args, { ...opts, allowFailure: true });
      clean = true;
      return this.commandResult(args, r, argv, `in a container of ${image}`, opts.allowFailure);
    } finally {
      if (!clean) await this.removeContainer(name).catch(() => {});
    }
  }

  private commandResult(
    args: string[],
    r: SpawnResult,
    argv: string[],
    where: string,
    allowFailure: boolean | undefined,
  ): ExecResult {
    const result: ExecResult = {
      code: r.code ?? -1,
      stdout: r.stdout,
      stderr: r.stderr,
      durationMs: r.durationMs,
    };
    if (r.code === 0) return result;
    // 125 is podman's own failure (no such container, runtime error), never the command's status;
    // a misconfigured runtime fails every exec the same way: neither is the command's to judge.
    if (r.code === null || r.code === 125 || podmanMisconfiguration(r.stderr)) throw this.failure(args, r);
    if (allowFailure) return result;
    const cmd = describeCommand(argv[0]!, argv.slice(1), 120);
    if (r.code === 127) {
      return this.throwCommand(
        `${cmd} ${where}: command not found in the image (${stderrTail(r.stderr, 300)})`,
      );
    }
    if (r.code === 126) {
      return this.throwCommand(`${cmd} ${where}: cannot be executed (${stderrTail(r.stderr, 300)})`);
    }
    return this.throwCommand(
      `${cmd} ${where} exited with ${r.code}: ${stderrTail(r.stderr) || 'no error output'}`,
    );
  }

  private throwCommand(message: string): never {
    throw new GeneratorError('PODMAN_FAILED', message);
  }

  /** `podman commit`: a container's filesystem becomes an image; returns its id. */
  async commit(
    container: string,
    tag: string,
    opts: CommandOptions & { changes?: string[]; squash?: boolean; message?: string } = {},
  ): Promise<string> {
    assertRef('container', container);
    assertRef('image tag', tag);
    const args = ['commit', '--quiet'];
    for (const c of opts.changes ?? []) args.push('--change', c);
    if (opts.squash) args.push('--squash');
    if (opts.message) args.push('--message', opts.message);
    args.push(container, tag);
    const r = await this.command(args, { ...opts, timeoutMs: opts.timeoutMs ?? 30 * 60 * 1000 });
    return normalizeId(r.stdout, 'image');
  }

  /** `podman export`: the container's filesystem as a tarball at `outFile`. */
  async exportContainer(container: string, outFile: string, opts: CommandOptions = {}): Promise<void> {
    assertRef('container', container);
    await this.command(['export', '--output', path.resolve(outFile), container], {
      ...opts,
      timeoutMs: opts.timeoutMs ?? 30 * 60 * 1000,
    });
  }

  /** `podman cp HOST CONTAINER:PATH`: puts a host file into a container (running or not). */
  async copyInto(
    container: string,
    hostPath: string,
    containerPath: string,
    opts: CommandOptions = {},
  ): Promise<void> {
    assertRef('container', container);
    const src = path.resolve(hostPath);
    if (src.includes(':'))
      throw new GeneratorError('INVALID_ARGUMENT', `podman cp cannot copy a path with ":" (${src})`);
    if (!containerPath.startsWith('/')) {
      throw new GeneratorError('INVALID_ARGUMENT', `container path must be absolute: ${containerPath}`);
    }
    await this.command(['cp', src, `${container}:${containerPath}`], opts);
  }

  /** `podman mount`: the container's root filesystem on the host (read it from here). */
  async mount(container: string, opts: CommandOptions = {}): Promise<string> {
    assertRef('container', container);
    const r = await this.command(['mount', container], opts);
    const mountPoint = r.stdout.trim();
    if (!mountPoint.startsWith('/')) {
      throw new GeneratorError(
        'PODMAN_FAILED',
        `podman mount ${container} printed no path (${JSON.stringify(mountPoint)})`,
      );
    }
    return mountPoint;
  }

  async unmount(container: string, opts: CommandOptions = {}): Promise<void> {
    assertRef('container', container);
    await this.command(['unmount', container], opts);
  }

  /**
   * `podman rm --force --time 0`: stops (kills) and removes a container. A container that is
   * already gone is fine. Call it from `finally` blocks without the work's AbortSignal.
   */
  async removeContainer(container: string, opts: CommandOptions = {}): Promise<void> {
    assertRef('container', container);
    const args = ['rm', '--force', '--time', '0', '--ignore', container];
    await this.command(args, { ...opts, timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  /**
   * Containers (running or not) carrying every one of `labels` (`key=value` or `key`; default
   * `sysattest=1`).
   */
  async listContainers(opts: CommandOptions & { labels?: string[] } = {}): Promise<ContainerSummary[]> {
    const args = ['ps', '--all', '--format', 'json'];
    for (const l of opts.labels ?? [SYSATTEST_LABEL_FILTER]) args.push('--filter', `label=${l}`);
    const r = await this.command(args, opts);
    let list: unknown;
    try {
      list = JSON.parse(r.stdout || '[]');
    } catch {
      throw new GeneratorError('PODMAN_FAILED', 'podman ps printed something that is not JSON');
    }
    if (!Array.isArray(list)) return [];
    return list.map((item) => {
      const c = obj(item);
      const created =
        typeof c.Created === 'number' ? new Date(c.Created * 1000).toISOString() : str(c.CreatedAt);
      return {
        id: str(c.Id),
        names: stringArray(c.Names) ?? [],
        image: str(c.Image),
        imageId: str(c.ImageID),
        state: str(c.State),
        labels: stringRecord(c.Labels),
        created,
      };
    });
  }

  /** Removes every container labelled `sysattest=1` (leftovers of a killed process); returns them. */
  async removeLabelledContainers(
    opts: CommandOptions & { labels?: string[] } = {},
  ): Promise<ContainerSummary[]> {
    const list = await this.listContainers(opts);
    for (const c of list) await this.removeContainer(c.id);
    return list;
  }
}
