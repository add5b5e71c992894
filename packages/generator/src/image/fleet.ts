import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  formatPlatform,
  packageFamily,
  parsePlatform,
  RootDir,
  type PackageManagerName,
  type Platform,
} from '@sysattest/core';
import { GeneratorError, isGeneratorError } from '../errors.js';
import { throwIfAborted } from '../podman/interrupt.js';
import { Podman, type ImageInfo } from '../podman/podman.js';
import { spawnCapture, stderrTail } from '../podman/process.js';
import { makeTempDir, removeTempDir } from '../podman/tempdir.js';
import { generatorHome } from '../paths.js';
import { diffPackages, listContainerPackages, listImagePackages, type PackageChange } from './packages.js';
import { REMOVE_SOURCES_COMMAND, sourceFiles, type AptSourceSpec } from './apt-sources.js';
import { checkCanRunArch, DEFAULT_IMAGE_NAMESPACE, imageNames, ociArch, type ImageNames } from './oci.js';
import {
  acquireLock,
  readState,
  stateFilePath,
  updateState,
  type GenerationRecord,
  type ImageSource,
  type ImageState,
  type PlatformImage,
} from './state.js';

/**
 * apt settings every image gets (`/etc/apt/apt.conf.d/`): retry downloads, never install
 * Recommends or Suggests (a generation installs exactly what it is asked for), no translations.
 */
export const APT_CONF = `// sysattest-generator: unattended, reproducible package installs
Acquire::Retries "5";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dpkg::Use-Pty "false";
`;

/**
 * dpkg settings every image gets: no fsync (containers are thrown away; it makes installs much
 * faster). Never any path-exclude: a manifest must cover every file a package installs.
 */
export const DPKG_CFG = `# sysattest-generator: containers are thrown away, skip fsync
force-unsafe-io
`;

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Debian suites the generator is known to build (others are tried: mmdebstrap decides). */
export const KNOWN_DEBIAN_SUITES = ['bullseye', 'bookworm', 'trixie', 'forky', 'sid'];

export interface FleetOptions {
  /** Generator state directory (default generatorHome()). */
  home?: string;
  podman?: Podman;
  /** Image names are `<namespace>/<distro>:<release>-<arch>[-g<N>]` (default localhost/sysattest). */
  namespace?: string;
  /** Where temporary directories go (default the OS temp dir). */
  tmpDir?: string;
  /** Generations kept per platform, the current one included (default 2). */
  keepGenerations?: number;
  /** The mmdebstrap executable (default `mmdebstrap` from PATH). */
  mmdebstrap?: string;
  /** For tests: the binfmt_misc directory and the host architecture. */
  binfmtDir?: string;
  hostArch?: string;
  /** Steps, for people ("running mmdebstrap…"). */
  onProgress?: (message: string) => void;
  /** Output lines of the tools doing the work (mmdebstrap, apt-get). */
  onToolOutput?: (line: string) => void;
}

export interface BuildOptions {
  /** Use this image (pulled if podman does not have it) instead of building from the archive. */
  fromImage?: string;
  /** Use this root filesystem tarball instead of building from the archive. */
  rootfs?: string;
  /** mmdebstrap MIRROR arguments (URIs or one-line `deb …` entries). Default: mmdebstrap's own. */
  mirrors?: string[];
  /** Build even when the platform has an image (it becomes a new generation). */
  force?: boolean;
  signal?: AbortSignal;
}

export interface RefreshOptions {
  /** Container network for apt (default podman's default network). */
  network?: string;
  /** Extra apt configuration for this refresh, as `-o` values (`Acquire::Retries=0`). */
  aptOptions?: string[];
  /**
   * The image's extra apt sources from now on (snapshot archive, third-party repositories),
   * replacing the ones it had; undefined keeps them as they are. See apt-sources.ts.
   */
  sources?: AptSourceSpec[];
  signal?: AbortSignal;
}

export interface RemoveOptions {
  /** Remove only this (non-current) generation. */
  generation?: number;
  /** Remove even when containers use the image (podman removes those containers too). */
  force?: boolean;
  signal?: AbortSignal;
}

export interface ImageResult {
  image: PlatformImage;
  generation: GenerationRecord;
  /** Generations whose images were removed to keep the last `keepGenerations`. */
  pruned: number[];
  durationMs: number;
}

export interface RemoveResult {
  platform: string;
  /** Tags removed from podman. */
  removedTags: string[];
  /** True when the platform's whole entry is gone. */
  platformRemoved: boolean;
}

export interface ListedImage extends PlatformImage {
  /** Whether podman still has the current image; null when podman could not be asked. */
  present: boolean | null;
}

function now(): string {
  return new Date().toISOString();
}

function lastGeneration(image: PlatformImage): number {
  return image.history.reduce((m, g) => Math.max(m, g.generation), image.generation);
}

/** `ENV K=V` for `--change`, quoting values that need it. */
function envChange(key: string, value: string): string {
  return /^[\w@%+=:,./-]*$/.test(value) ? `ENV ${key}=${value}` : `ENV ${key}=${JSON.stringify(value)}`;
}

/** mmdebstrap's own error lines (`E: …`), the most telling first-hand; else its last lines. */
function mmdebstrapErrors(stderr: string): string {
  const errors = stderr
    .split('\n')
    .filter((l) => l.startsWith('E: ') && !/^E: mmdebstrap failed to run/.test(l));
  return stderrTail(errors.length > 0 ? errors.slice(0, 3).join('\n') : stderr);
}

/** Where a build takes the new image from (validated options). */
type BuildSource =
  | { kind: 'mmdebstrap'; mirrors: string[] }
  | { kind: 'rootfs'; path: string; bytes: number }
  | { kind: 'image'; ref: string };

/** The build's source from its options, refusing combinations that cannot be built. */
async function buildSourceOf(platform: Platform, opts: BuildOptions): Promise<BuildSource> {
  const id = formatPlatform(platform);
  if (opts.fromImage !== undefined && opts.rootfs !== undefined) {
    throw new GeneratorError('INVALID_ARGUMENT', 'give --from-image or --rootfs, not both');
  }
  const fromArchive = opts.fromImage === undefined && opts.rootfs === undefined;
  if (!fromArchive && opts.mirrors && opts.mirrors.length > 0) {
    throw new GeneratorError('INVALID_ARGUMENT', '--mirror applies to builds from the Debian archive only');
  }
  if (fromArchive && platform.distro !== 'debian') {
    throw new GeneratorError(
      'UNSUPPORTED_PLATFORM',
      `cannot build ${id} from its distribution's archive: only Debian platforms are built (with mmdebstrap) for now; ` +
        `give an image with --from-image REF or a root filesystem tarball with --rootfs FILE`,
    );
  }
  ociArch(platform); // an unknown architecture is refused before anything runs
  if (opts.fromImage !== undefined) return { kind: 'image', ref: opts.fromImage };
  if (opts.rootfs === undefined) return { kind: 'mmdebstrap', mirrors: opts.mirrors ?? [] };
  const rootfs = path.resolve(opts.rootfs);
  const st = await fsp.stat(rootfs).catch(() => undefined);
  if (!st?.isFile()) {
    throw new GeneratorError(
      'INVALID_ARGUMENT',
      `--rootfs ${opts.rootfs}: no such file (a root filesystem tarball)`,
    );
  }
  return { kind: 'rootfs', path: rootfs, bytes: st.size };
}

/** What a build or a refresh is about to make: the platform's next generation. */
interface NewGeneration {
  id: string;
  platform: Platform;
  existing: PlatformImage | undefined;
  names: ImageNames;
  generation: number;
  kind: GenerationRecord['kind'];
  signal: AbortSignal | undefined;
  started: number;
}

/** The new generation's image, as a build or a refresh made it. */
interface MadeImage {
  imageId: string;
  packageCount: number | null;
  /** Builds only. */
  source?: ImageSource;
  changes: PackageChange[] | null;
}

/** Rewrap podman's and tools' failures as this operation's failure (keeping the cause). */
function wrapFailure(e: unknown, code: 'BUILD_FAILED' | 'REFRESH_FAILED', what: string): unknown {
  if (isGeneratorError(e) && (e.code === 'PODMAN_FAILED' || e.code === 'PODMAN_TIMEOUT')) {
    return new GeneratorError(code, `${what}: ${e.message}`, { cause: e });
  }
  return e;
}

/**
 * The generator's images, one per platform, each with a history of generations. Builds Debian
 * images from the archive with mmdebstrap + `podman import`, or takes an image or a root
 * filesystem tarball; refreshes them (apt update + upgrade) into new generations; records all
 * of it in `<home>/images.json`.
 */
export class ImageFleet {
  readonly home: string;
  readonly podman: Podman;
  readonly namespace: string;
  readonly stateFile: string;
  private readonly tmpDir: string;
  private readonly keep: number;
  private readonly mmdebstrapBinary: string;
  private readonly binfmtDir: string | undefined;
  private readonly hostArch: string | undefined;
  private readonly progress: (message: string) => void;
  private readonly toolOutput: ((line: string) => void) | undefined;

  constructor(opts: FleetOptions = {}) {
    this.home = opts.home ?? generatorHome();
    this.podman = opts.podman ?? new Podman();
    this.namespace = opts.namespace ?? DEFAULT_IMAGE_NAMESPACE;
    this.stateFile = stateFilePath(this.home);
    this.tmpDir = opts.tmpDir ?? os.tmpdir();
    this.keep = Math.max(1, opts.keepGenerations ?? 2);
    this.mmdebstrapBinary = opts.mmdebstrap ?? 'mmdebstrap';
    this.binfmtDir = opts.binfmtDir;
    this.hostArch = opts.hostArch;
    this.progress = opts.onProgress ?? (() => {});
    this.toolOutput = opts.onToolOutput;
  }

  // ---- queries ----------------------------------------------------------------------------------

  /** Every platform's image record, sorted by platform. Reads the state file only. */
  async listImages(): Promise<PlatformImage[]> {
    const state = await readState(this.stateFile);
    return Object.values(state.images).sort((a, b) => (a.platform < b.platform ? -1 : 1));
  }

  /** As listImages(), plus whether podman still has each current image (null: podman unusable). */
  async listImagesWithStatus(opts: { signal?: AbortSignal } = {}): Promise<ListedImage[]> {
    const images = await this.listImages();
    const out: ListedImage[] = [];
    let podmanUsable = true;
    for (const image of images) {
      let present: boolean | null = null;
      if (podmanUsable) {
        try {
          present = await this.podman.imageExists(image.imageId, opts);
        } catch (e) {
          if (isGeneratorError(e, 'INTERRUPTED')) throw e;
          podmanUsable = false;
        }
      }
      out.push({ ...image, present });
    }
    return out;
  }

  async getImage(platformId: string): Promise<PlatformImage | undefined> {
    const id = formatPlatform(parsePlatform(platformId));
    return (await readState(this.stateFile)).images[id];
  }

  // ---- build ------------------------------------------------------------------------------------

  /**
   * Builds the platform's image: Debian from the archive with mmdebstrap (minbase), or from
   * `fromImage` / `rootfs`. The image gets our apt/dpkg settings and an environment (PATH,
   * DEBIAN_FRONTEND), no command or entrypoint. A platform that has an image needs `force`; the
   * build then becomes its next generation. Temporary files and containers are removed whatever
   * happens; a failed build leaves no image behind.
   */
  async buildImage(platformId: string, opts: BuildOptions = {}): Promise<ImageResult> {
    const started = Date.now();
    const platform = parsePlatform(platformId);
    const id = formatPlatform(platform);
    const { signal } = opts;
    const from = await buildSourceOf(platform, opts);
    // Listing packages runs the image's own tools, so even a pulled foreign image needs qemu.
    const emulation = checkCanRunArch(platform, { binfmtDir: this.binfmtDir, hostArch: this.hostArch });
    await this.podman.check({ signal });

    const release = await this.lockPlatform(id);
    try {
      const state = await readState(this.stateFile);
      const existing = state.images[id];
      if (existing && !opts.force) {
        throw new GeneratorError(
          'IMAGE_EXISTS',
          `${id} already has an image (generation ${existing.generation}, ${existing.tag}); ` +
            `update it with: image refresh ${id}, or rebuild it with: image build ${id} --force`,
        );
      }
      const names = imageNames(platform, this.namespace);
      const clash = Object.values(state.images).find((i) => i.tag === names.current && i.platform !== id);
      if (clash) {
        throw new GeneratorError(
          'INVALID_ARGUMENT',
          `${id} would use the image name ${names.current} of ${clash.platform}`,
        );
      }
      const generation = existing ? lastGeneration(existing) + 1 : 1;
      const plan: NewGeneration = {
        id,
        platform,
        existing,
        names,
        generation,
        kind: 'build',
        signal,
        started,
      };
      return await this.newGeneration(
        plan,
        async (tmp, created) => {
          const made = await this.importBuildSource(plan, from, emulation.emulated, tmp, created);
          return { ...made, ...(await this.listNewPackages(plan, made.imageId)) };
        },
        (s, record, info) => {
          const entry: PlatformImage = {
            platform: id,
            tag: names.current,
            imageId: record.imageId,
            digest: info.digest,
            architecture: info.architecture || ociArch(platform).arch,
            builtAt: record.createdAt,
            refreshedAt: null,
            generation,
            packageCount: record.packageCount,
            source: record.source as ImageSource,
            history: [...(s.images[id]?.history ?? []), record],
          };
          s.images[id] = entry;
          return entry;
        },
      );
    } finally {
      await release();
    }
  }

  /** Makes the new generation's image from the build's source, recording its tags in `created`. */
  private async importBuildSource(
    plan: NewGeneration,
    from: BuildSource,
    emulated: boolean,
    tmp: string,
    created: string[],
  ): Promise<{ imageId: string; source: ImageSource }> {
    const { platform, generation, names, signal } = plan;
    const genTag = names.generation(generation);
    const family = packageFamily(platform.distro);
    if (from.kind === 'mmdebstrap') {
      const tar = path.join(tmp, 'rootfs.tar');
      await this.mmdebstrap(platform, tar, tmp, from.mirrors, emulated, signal);
      this.progress(`importing the root filesystem as ${genTag}`);
      const imageId = await this.importRootfs(tar, genTag, platform, generation, [], signal);
      created.push(genTag);
      await fsp.rm(tar, { force: true });
      return {
        imageId,
        source: { kind: 'mmdebstrap', suite: platform.release, variant: 'minbase', mirrors: from.mirrors },
      };
    }
    if (from.kind === 'rootfs') {
      const source: ImageSource = { kind: 'rootfs', path: from.path, bytes: from.bytes };
      if (family !== 'dpkg') {
        this.progress(`importing ${from.path} as ${genTag}`);
        const imageId = await this.importRootfs(from.path, genTag, platform, generation, [], signal);
        created.push(genTag);
        return { imageId, source };
      }
      const scratch = `${names.repository}:scratch-${randomBytes(4).toString('hex')}`;
      this.progress(`importing ${from.path}`);
      await this.importRootfs(from.path, scratch, platform, generation, [], signal);
      created.push(scratch);
      const imageId = await this.finalizeImage(
        scratch,
        genTag,
        platform,
        generation,
        tmp,
        family,
        [],
        signal,
      );
      created.push(genTag);
      await this.podman.removeImage(scratch, { ignoreMissing: true });
      created.splice(created.indexOf(scratch), 1);
      return { imageId, source };
    }
    const oci = ociArch(platform);
    let srcId: string;
    if (await this.podman.imageExists(from.ref, { signal })) {
      srcId = (await this.podman.imageInspect(from.ref, { signal })).id;
    } else {
      this.progress(`pulling ${from.ref}`);
      srcId = await this.podman.pullImage(from.ref, { arch: oci.arch, signal });
    }
    const src = await this.podman.imageInspect(srcId, { signal });
    if (src.architecture && src.architecture !== oci.arch) {
      throw new GeneratorError(
        'BUILD_FAILED',
        `image ${from.ref} is for ${src.os}/${src.architecture}, but ${plan.id} needs ${oci.arch}`,
      );
    }
    const imageId = await this.finalizeImage(
      srcId,
      genTag,
      platform,
      generation,
      tmp,
      family,
      src.env,
      signal,
    );
    created.push(genTag);
    return { imageId, source: { kind: 'image', ref: from.ref, imageId: srcId } };
  }

  /**
   * The new image's installed packages (counted; none is a failed build) and what changed since
   * the previous generation, when it is still there to compare with. Nothing for a distro whose
   * package family is unknown.
   */
  private async listNewPackages(
    plan: NewGeneration,
    imageId: string,
  ): Promise<{ packageCount: number | null; changes: PackageChange[] | null }> {
    const { platform, existing, signal } = plan;
    const family = packageFamily(platform.distro);
    if (!family) return { packageCount: null, changes: null };
    this.progress('listing the installed packages');
    const listing = { signal, defaultArch: platform.arch };
    const packages = await listImagePackages(this.podman, imageId, family, listing);
    if (packages.length === 0) {
      throw new GeneratorError('BUILD_FAILED', `the new image of ${plan.id} has no installed packages`);
    }
    let changes: PackageChange[] | null = null;
    if (existing && (await this.podman.imageExists(existing.imageId, { signal }))) {
      changes = diffPackages(
        await listImagePackages(this.podman, existing.imageId, family, listing),
        packages,
      );
    }
    return { packageCount: packages.length, changes };
  }

  /** Runs mmdebstrap (minbase) for a Debian platform into `tar`. */
  private async mmdebstrap(
    platform: Platform,
    tar: string,
    tmp: string,
    mirrors: string[],
    emulated: boolean,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const aptConf = path.join(tmp, 'apt.conf');
    const dpkgCfg = path.join(tmp, 'dpkg.cfg');
    await fsp.writeFile(aptConf, APT_CONF);
    await fsp.writeFile(dpkgCfg, DPKG_CFG);
    const args = [
      '--variant=minbase',
      `--architectures=${platform.arch}`,
      '--format=tar',
      // Our settings, written into the image (etc/apt/apt.conf.d/99mmdebstrap, etc/dpkg/…).
      `--aptopt=${aptConf}`,
      `--dpkgopt=${dpkgCfg}`,
      // Keep the package lists of the build: the image can install and list the archive's
      // packages as it was at build time, and a later `apt-get update` only fetches changes.
      '--skip=cleanup/apt/lists',
      '--',
      platform.release,
      tar,
      ...mirrors,
    ];
    for (const m of mirrors) {
      if (m.length === 0 || m.startsWith('-'))
        throw new GeneratorError('INVALID_ARGUMENT', `invalid mirror ${JSON.stringify(m)}`);
    }
    const what = `mmdebstrap (${platform.release}, ${platform.arch}${emulated ? ', emulated with qemu' : ''})`;
    if (!KNOWN_DEBIAN_SUITES.includes(platform.release)) {
      this.progress(
        `note: ${platform.release} is not a suite this generator knows (${KNOWN_DEBIAN_SUITES.join(', ')}); trying anyway`,
      );
    }
    this.progress(`running ${what}: this takes ${emulated ? 'a few minutes' : 'about a minute'}`);
    let r;
    try {
      r = await spawnCapture(this.mmdebstrapBinary, args, {
        // mmdebstrap builds its chroot in TMPDIR: keep it inside our temporary directory.
        env: { ...process.env, TMPDIR: tmp },
        signal,
        timeoutMs: 60 * 60 * 1000,
        onStderrLine: this.toolOutput,
        killGraceMs: 30_000,
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES') {
        throw new GeneratorError(
          'TOOL_MISSING',
          `mmdebstrap is not installed (needed to build ${formatPlatform(platform)} from the archive): ` +
            `apt-get install mmdebstrap, or run scripts/podman-setup.sh as root`,
          { cause: e },
        );
      }
      throw e;
    }
    if (r.aborted) throwIfAborted(signal);
    if (r.timedOut)
      throw new GeneratorError('BUILD_FAILED', `${what} did not finish within an hour and was killed`);
    if (r.code !== 0) {
      throw new GeneratorError(
        'BUILD_FAILED',
        `${what} failed (exit ${r.code ?? r.exitSignal}): ${mmdebstrapErrors(r.stderr) || 'no error output'}`,
      );
    }
  }

  /** `podman import` with our image config: environment and labels, no command. */
  private importRootfs(
    tar: string,
    tag: string,
    platform: Platform,
    generation: number,
    inheritedEnv: string[],
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const oci = ociArch(platform);
    const env = new Map<string, string>();
    for (const kv of inheritedEnv) {
      const eq = kv.indexOf('=');
      if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
    if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
    if (packageFamily(platform.distro) === 'dpkg') env.set('DEBIAN_FRONTEND', 'noninteractive');
    const id = formatPlatform(platform);
    const changes = [
      ...[...env].map(([k, v]) => envChange(k, v)),
      `LABEL org.sysattest.platform=${id}`,
      `LABEL org.sysattest.generation=${generation}`,
    ];
    return this.podman.importImage(tar, {
      tag,
      changes,
      arch: oci.arch,
      variant: oci.variant,
      message: `sysattest-generator ${id} generation ${generation}`,
      signal,
    });
  }

  /**
   * Makes a generation from an existing image (pulled, or an imported operator tarball): our
   * apt/dpkg settings go in with `podman cp` (the image runs nothing of ours), dpkg path-exclude
   * rules (minimized images drop documentation) are taken out so every file of a package gets
   * installed, and the filesystem is exported and imported again so the image has our config and
   * a single layer.
   */
  private async finalizeImage(
    srcRef: string,
    genTag: string,
    platform: Platform,
    generation: number,
    tmp: string,
    family: PackageManagerName | undefined,
    inheritedEnv: string[],
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const container = await this.podman.createContainer(srcRef, {
      command: ['true'],
      network: 'none',
      labels: { 'sysattest.platform': formatPlatform(platform), 'sysattest.purpose': 'build' },
      signal,
    });
    try {
      if (family === 'dpkg') {
        this.progress('adding apt and dpkg settings');
        const aptConf = path.join(tmp, '99sysattest-apt');
        const dpkgCfg = path.join(tmp, '99sysattest-dpkg');
        await fsp.writeFile(aptConf, APT_CONF);
        await fsp.writeFile(dpkgCfg, DPKG_CFG);
        await this.podman.copyInto(container, aptConf, '/etc/apt/apt.conf.d/99sysattest', { signal });
        await this.podman.copyInto(container, dpkgCfg, '/etc/dpkg/dpkg.cfg.d/99sysattest', { signal });
        await this.dropPathExcludes(container, tmp, signal);
      }
      const tar = path.join(tmp, 'rootfs.tar');
      this.progress(`exporting and importing the root filesystem as ${genTag}`);
      await this.podman.exportContainer(container, tar, { signal });
      const id = await this.importRootfs(tar, genTag, platform, generation, inheritedEnv, signal);
      await fsp.rm(tar, { force: true });
      return id;
    } finally {
      await this.podman.removeContainer(container).catch(() => {});
    }
  }

  /**
   * Rewrites /etc/dpkg/dpkg.cfg.d files that exclude paths, without those lines. Read through
   * `podman mount` with core's in-root resolution (never following a link out of the image);
   * written back with `podman cp`.
   */
  private async dropPathExcludes(
    container: string,
    tmp: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const mnt = await this.podman.mount(container, { signal });
    try {
      const root = RootDir.open(mnt);
      const dirHost = root.resolve('/etc/dpkg/dpkg.cfg.d', { followFinal: true });
      const entries = await fsp.readdir(dirHost).catch(() => [] as string[]);
      for (const name of entries) {
        const host = path.join(dirHost, name);
        const st = await fsp.lstat(host);
        if (!st.isFile() || st.size > 1024 * 1024) continue;
        const text = await fsp.readFile(host, 'utf8');
        if (!/^\s*path-exclude/m.test(text)) continue;
        const kept = text
          .split('\n')
          .map((l) => (/^\s*path-(exclude|include)/.test(l) ? `# disabled by sysattest-generator: ${l}` : l))
          .join('\n');
        const out = path.join(tmp, `dpkg-cfg-${randomBytes(4).toString('hex')}`);
        await fsp.writeFile(out, kept);
        await this.podman.copyInto(container, out, `/etc/dpkg/dpkg.cfg.d/${name}`, { signal });
        this.progress(
          `disabled dpkg path-exclude rules in /etc/dpkg/dpkg.cfg.d/${name} (manifests need every file)`,
        );
      }
    } finally {
      await this.podman.unmount(container).catch(() => {});
    }
  }

  /** Replaces the container's extra apt sources (files it wrote before) by `sources`. */
  private async installSources(
    container: string,
    sources: readonly AptSourceSpec[],
    platform: Platform,
    tmp: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const files = await sourceFiles(sources, platform.distro);
    this.progress(`extra apt sources: ${sources.map((s) => `${s.name} (${s.kind})`).join(', ') || 'none'}`);
    const dirs = [...new Set([...files.keys()].map((f) => path.posix.dirname(f)))];
    await this.podman.exec(container, ['mkdir', '-p', ...dirs, '/etc/sysattest'], { signal });
    await this.podman.exec(container, REMOVE_SOURCES_COMMAND, { signal });
    let n = 0;
    for (const [target, text] of files) {
      const local = path.join(tmp, `source-file-${n++}`);
      await fsp.writeFile(local, text, { mode: 0o644 });
      await fsp.chmod(local, 0o644);
      await this.podman.copyInto(container, local, target, { signal });
    }
  }

  /**
   * The one transaction of a build and a refresh, all or nothing: `make` produces the new
   * generation's image in a temporary directory, recording in `created` every tag it makes; then
   * the current tag moves to that image and `apply` records the generation in the state file.
   * Until the state file is written, a failure rolls every recorded tag back (the current tag to
   * the previous generation's image, the others removed) and is wrapped as BUILD_FAILED or
   * REFRESH_FAILED; after it, old generations are pruned.
   */
  private async newGeneration(
    plan: NewGeneration,
    make: (tmp: string, created: string[]) => Promise<MadeImage>,
    apply: (state: ImageState, record: GenerationRecord, info: ImageInfo) => PlatformImage,
  ): Promise<ImageResult> {
    const { id, existing, names, generation, kind, signal } = plan;
    const tmp = await makeTempDir(kind === 'build' ? 'image' : 'refresh', this.tmpDir);
    const created: string[] = [];
    let committed = false;
    try {
      const made = await make(tmp, created);
      const info = await this.podman.imageInspect(made.imageId, { signal });
      throwIfAborted(signal);
      await this.podman.tagImage(made.imageId, names.current);
      created.push(names.current);
      const record: GenerationRecord = {
        generation,
        kind,
        createdAt: now(),
        imageId: made.imageId,
        tag: names.generation(generation),
        digest: info.digest,
        packageCount: made.packageCount,
        ...(made.source !== undefined ? { source: made.source } : {}),
        changes: made.changes,
        removedAt: null,
      };
      const image = await updateState(this.stateFile, (s) => apply(s, record, info));
      committed = true;
      const pruned = await this.prune(id);
      return {
        image: (await this.getImage(id)) ?? image,
        generation: record,
        pruned,
        durationMs: Date.now() - plan.started,
      };
    } catch (e) {
      if (!committed) await this.rollback(created, existing, names.current);
      throw kind === 'build'
        ? wrapFailure(e, 'BUILD_FAILED', `cannot build ${id}`)
        : wrapFailure(e, 'REFRESH_FAILED', `cannot refresh ${id}`);
    } finally {
      await removeTempDir(tmp);
    }
  }

  /** Undoes a failed build or refresh: the new tags go, the current tag returns to the old image. */
  private async rollback(
    created: string[],
    existing: PlatformImage | undefined,
    currentTag: string,
  ): Promise<void> {
    for (const tag of created.slice().reverse()) {
      try {
        if (tag === currentTag && existing && (await this.podman.imageExists(existing.imageId))) {
          await this.podman.tagImage(existing.imageId, currentTag);
        } else {
          await this.podman.removeImage(tag, { ignoreMissing: true });
        }
      } catch (e) {
        this.progress(`warning: could not remove ${tag} after the failure: ${(e as Error).message}`);
      }
    }
  }

  // ---- refresh ----------------------------------------------------------------------------------

  /**
   * Updates the platform's image into a new generation: a container from the current image runs
   * `apt-get update` and `apt-get dist-upgrade` (the image's own apt, no shell), its filesystem
   * becomes the next generation, and what changed (package: old → new version) is recorded. The
   * last `keepGenerations` generations are kept.
   */
  async refreshImage(platformId: string, opts: RefreshOptions = {}): Promise<ImageResult> {
    const started = Date.now();
    const platform = parsePlatform(platformId);
    const id = formatPlatform(platform);
    const { signal } = opts;
    const family = packageFamily(platform.distro);
    for (const o of opts.aptOptions ?? []) {
      if (!/^[A-Za-z0-9][\w:.-]*=/.test(o))
        throw new GeneratorError(
          'INVALID_ARGUMENT',
          `invalid apt option ${JSON.stringify(o)} (expected Name::Of::Option=value)`,
        );
    }
    if (family !== 'dpkg') {
      throw new GeneratorError(
        'UNSUPPORTED_PLATFORM',
        `refreshing ${id} is not supported yet (apt-based images only); rebuild it with: image build ${id} --force`,
      );
    }
    checkCanRunArch(platform, { binfmtDir: this.binfmtDir, hostArch: this.hostArch });
    await this.podman.check({ signal });
    const release = await this.lockPlatform(id);
    try {
      const state = await readState(this.stateFile);
      const existing = state.images[id];
      if (!existing) {
        throw new GeneratorError(
          'IMAGE_NOT_FOUND',
          `no image for ${id}: build it first with: image build ${id}`,
        );
      }
      if (!(await this.podman.imageExists(existing.imageId, { signal }))) {
        throw new GeneratorError(
          'IMAGE_NOT_FOUND',
          `the image of ${id} (${existing.imageId.slice(0, 12)}) is gone from podman (removed outside sysattest-generator?); ` +
            `rebuild it with: image build ${id} --force`,
        );
      }
      const current = await this.podman.imageInspect(existing.imageId, { signal });
      const names = imageNames(platform, this.namespace);
      const generation = lastGeneration(existing) + 1;
      const plan: NewGeneration = {
        id,
        platform,
        existing,
        names,
        generation,
        kind: 'refresh',
        signal,
        started,
      };
      return await this.newGeneration(
        plan,
        (tmp, created) => this.upgradeInContainer(plan, existing, current.env, opts, tmp, created),
        (s, record, info) => {
          const entry = s.images[id];
          if (!entry)
            throw new GeneratorError('IMAGE_NOT_FOUND', `${id} was removed while it was being refreshed`);
          entry.tag = names.current;
          entry.imageId = record.imageId;
          entry.digest = info.digest;
          entry.refreshedAt = record.createdAt;
          entry.generation = generation;
          entry.packageCount = record.packageCount;
          entry.history.push(record);
          return entry;
        },
      );
    } finally {
      await release();
    }
  }

  /**
   * The refresh itself: a container from the current generation `from` runs apt-get update and
   * dist-upgrade (after the extra sources, if given), and its filesystem, exported and imported
   * with the image's environment `env`, is the new generation's image (its tag recorded in
   * `created`). The container is removed whatever happens.
   */
  private async upgradeInContainer(
    plan: NewGeneration,
    from: PlatformImage,
    env: string[],
    opts: RefreshOptions,
    tmp: string,
    created: string[],
  ): Promise<MadeImage> {
    const { id, platform, generation, names, signal } = plan;
    const genTag = names.generation(generation);
    const family = 'dpkg';
    let container: string | undefined;
    try {
      this.progress(`starting a container from generation ${from.generation}`);
      container = await this.podman.createContainer(from.imageId, {
        name: `sysattest-refresh-${id.replace(/[^a-z0-9]+/g, '-')}-${randomBytes(3).toString('hex')}`,
        network: opts.network,
        labels: { 'sysattest.platform': id, 'sysattest.purpose': 'refresh' },
        signal,
      });
      await this.podman.startContainer(container, { signal });
      const before = await listContainerPackages(this.podman, container, family, { signal });
      const apt = (argv: string[]) => {
        this.progress(argv.join(' '));
        const [tool, ...rest] = argv;
        const withOptions = [tool!, ...(opts.aptOptions ?? []).flatMap((o) => ['-o', o]), ...rest];
        return this.podman.exec(container!, withOptions, {
          signal,
          timeoutMs: 60 * 60 * 1000,
          onOutputLine: this.toolOutput,
        });
      };
      if (opts.sources !== undefined) {
        await this.installSources(container, opts.sources, platform, tmp, signal);
      }
      // A failed download must fail the refresh, not produce a stale "new" generation.
      await apt(['apt-get', 'update', '--error-on=any']);
      await apt([
        'apt-get',
        '--yes',
        '-o',
        'Dpkg::Options::=--force-confdef',
        '-o',
        'Dpkg::Options::=--force-confold',
        'dist-upgrade',
      ]);
      // Downloaded .debs and apt's binary caches would only make the image larger.
      await apt(['apt-get', 'clean']);
      const after = await listContainerPackages(this.podman, container, family, { signal });
      const changes = diffPackages(before, after);
      this.progress(`${changes.length} package(s) changed; exporting the container's filesystem`);
      const tar = path.join(tmp, 'rootfs.tar');
      await this.podman.exportContainer(container, tar, { signal });
      await this.podman.removeContainer(container);
      container = undefined;
      this.progress(`importing it as ${genTag}`);
      const newId = await this.importRootfs(tar, genTag, platform, generation, env, signal);
      created.push(genTag);
      await fsp.rm(tar, { force: true });
      return { imageId: newId, packageCount: after.length, changes };
    } finally {
      if (container) await this.podman.removeContainer(container).catch(() => {});
    }
  }

  // ---- removal ----------------------------------------------------------------------------------

  /** Removes old generations beyond `keepGenerations`; one still in use is kept for next time. */
  private async prune(id: string): Promise<number[]> {
    const image = (await readState(this.stateFile)).images[id];
    if (!image) return [];
    const old = image.history
      .filter((g) => g.removedAt === null && g.generation !== image.generation)
      .sort((a, b) => b.generation - a.generation)
      .slice(this.keep - 1);
    const removed: number[] = [];
    for (const g of old) {
      try {
        if ((await this.containersUsing(g.imageId)).length > 0) {
          this.progress(`keeping generation ${g.generation} for now: a container uses it`);
          continue;
        }
        await this.podman.removeImage(g.tag, { ignoreMissing: true });
        removed.push(g.generation);
      } catch (e) {
        this.progress(`keeping generation ${g.generation} for now: ${(e as Error).message}`);
      }
    }
    if (removed.length > 0) {
      this.progress(`removed generation(s) ${removed.join(', ')} (keeping the last ${this.keep})`);
      await updateState(this.stateFile, (s) => {
        const at = now();
        for (const g of s.images[id]?.history ?? []) if (removed.includes(g.generation)) g.removedAt = at;
      });
    }
    return removed;
  }

  private async containersUsing(imageId: string): Promise<string[]> {
    const r = await this.podman.command([
      'ps',
      '--all',
      '--quiet',
      '--no-trunc',
      '--filter',
      `ancestor=${imageId}`,
    ]);
    return r.stdout.split('\n').filter((l) => l.trim().length > 0);
  }

  /**
   * Removes a platform's images (every generation still present) and its record, or with
   * `generation` one old generation's image. Refuses while containers use an image, unless
   * `force` (podman then removes those containers too).
   */
  async removeImage(platformId: string, opts: RemoveOptions = {}): Promise<RemoveResult> {
    const platform = parsePlatform(platformId);
    const id = formatPlatform(platform);
    const { signal } = opts;
    await this.podman.check({ signal });
    const release = await this.lockPlatform(id);
    try {
      const state = await readState(this.stateFile);
      const image = state.images[id];
      if (!image)
        throw new GeneratorError(
          'IMAGE_NOT_FOUND',
          `no image for ${id} (image list shows the platforms that have one)`,
        );
      const live = image.history.filter((g) => g.removedAt === null);
      let targets: GenerationRecord[];
      if (opts.generation !== undefined) {
        const g = image.history.find((h) => h.generation === opts.generation);
        if (!g) {
          throw new GeneratorError(
            'IMAGE_NOT_FOUND',
            `${id} has no generation ${opts.generation} (it has ${image.history.map((h) => h.generation).join(', ')})`,
          );
        }
        if (g.generation === image.generation) {
          throw new GeneratorError(
            'INVALID_ARGUMENT',
            `generation ${g.generation} is the current image of ${id}; remove the platform's images with: image rm ${id}`,
          );
        }
        if (g.removedAt !== null) {
          throw new GeneratorError(
            'IMAGE_NOT_FOUND',
            `generation ${g.generation} of ${id} was already removed (${g.removedAt})`,
          );
        }
        targets = [g];
      } else {
        targets = live;
      }
      if (!opts.force) {
        for (const g of targets) {
          const users = await this.containersUsing(g.imageId);
          if (users.length > 0) {
            throw new GeneratorError(
              'IMAGE_BUSY',
              `generation ${g.generation} of ${id} is used by ${users.length} container(s) (${users
                .map((u) => u.slice(0, 12))
                .join(', ')}); remove them first, or use --force`,
            );
          }
        }
      }
      const removedTags: string[] = [];
      const removedGenerations: number[] = [];
      const failures: string[] = [];
      if (opts.generation === undefined) {
        if (await this.podman.removeImage(image.tag, { force: opts.force, ignoreMissing: true })) {
          removedTags.push(image.tag);
        }
      }
      for (const g of targets) {
        try {
          if (await this.podman.removeImage(g.tag, { force: opts.force, ignoreMissing: true }))
            removedTags.push(g.tag);
          removedGenerations.push(g.generation);
        } catch (e) {
          failures.push(`generation ${g.generation}: ${(e as Error).message}`);
        }
      }
      const platformRemoved = opts.generation === undefined && failures.length === 0;
      await updateState(this.stateFile, (s) => {
        if (platformRemoved) {
          delete s.images[id];
          return;
        }
        const at = now();
        for (const g of s.images[id]?.history ?? [])
          if (removedGenerations.includes(g.generation)) g.removedAt = at;
        // If the current image went but an older one did not, the record stays for `image rm` again.
      });
      if (failures.length > 0) {
        throw new GeneratorError(
          'PODMAN_FAILED',
          `could not remove every image of ${id}: ${failures.join('; ')}`,
        );
      }
      return { platform: id, removedTags, platformRemoved };
    } finally {
      await release();
    }
  }

  // ---- locks ------------------------------------------------------------------------------------

  private lockPlatform(id: string): Promise<() => Promise<void>> {
    const file = path.join(this.home, 'locks', `image-${id.replace(/\//g, '_')}.lock`);
    return acquireLock(file, {
      busyMessage: (pid) =>
        `another sysattest-generator (pid ${pid ?? 'unknown'}) is building, refreshing or removing ${id}; ` +
        `wait for it, or remove ${file} if no such process runs`,
    });
  }
}

/** Convenience wrappers over a default fleet (generator home, podman from PATH). */
export function buildImage(platform: string, opts: BuildOptions & FleetOptions = {}): Promise<ImageResult> {
  return new ImageFleet(opts).buildImage(platform, opts);
}

export function refreshImage(
  platform: string,
  opts: RefreshOptions & FleetOptions = {},
): Promise<ImageResult> {
  return new ImageFleet(opts).refreshImage(platform, opts);
}

export function listImages(opts: FleetOptions = {}): Promise<PlatformImage[]> {
  return new ImageFleet(opts).listImages();
}

export function removeImage(
  platform: string,
  opts: RemoveOptions & FleetOptions = {},
): Promise<RemoveResult> {
  return new ImageFleet(opts).removeImage(platform, opts);
}
