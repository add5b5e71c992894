import { Command, InvalidArgumentError, Option } from 'commander';
import { GeneratorError } from '../errors.js';
import { loadSourcesFile } from '../image/apt-sources.js';
import { ImageFleet, type FleetOptions, type ImageResult, type ListedImage } from '../image/fleet.js';
import { formatChange } from '../image/packages.js';
import { withInterrupt } from '../podman/interrupt.js';

/** What the commands write to and how they make a fleet (tests replace these). */
export interface ImageCommandDeps {
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown; isTTY?: boolean };
  /** Makes the fleet from the options a command computed (progress callbacks…). */
  fleet?: (opts: FleetOptions) => ImageFleet;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a generation number (1, 2, …)');
  }
  return n;
}

/** `2026-11-25 15:48 UTC`, or `-` for none. */
function when(iso: string | null): string {
  return iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : '-';
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

function summary(verb: string, r: ImageResult): string {
  const changes = r.generation.changes;
  const changed =
    changes === null ? '' : `, ${changes.length} package change(s) since the previous generation`;
  const pruned = r.pruned.length > 0 ? `; removed old generation(s) ${r.pruned.join(', ')}` : '';
  return (
    `${r.image.platform}: ${verb} generation ${r.generation.generation} = ${r.image.tag} ` +
    `(image ${r.image.imageId.slice(0, 12)}, ${r.image.packageCount ?? 'unknown'} packages${changed}) ` +
    `in ${seconds(r.durationMs)}${pruned}`
  );
}

/**
 * Adds `image build|list|refresh|rm` to the generator's program: the per-platform container
 * images that generation jobs start from.
 */
export function registerImageCommands(program: Command, deps: ImageCommandDeps = {}): Command {
  const out = deps.stdout ?? process.stdout;
  const err = deps.stderr ?? process.stderr;
  const makeFleet = deps.fleet ?? ((o: FleetOptions) => new ImageFleet(o));

  const fleetFor = (opts: { quiet?: boolean; verbose?: boolean }): ImageFleet =>
    makeFleet({
      onProgress: opts.quiet ? undefined : (m) => err.write(`${m}\n`),
      onToolOutput: opts.verbose && !opts.quiet ? (l) => err.write(`  | ${l}\n`) : undefined,
    });

  const interruptible = <T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> =>
    withInterrupt(fn, {
      onInterrupt: (sig) =>
        err.write(`${sig}: stopping, removing containers and temporary files (again to quit now)…\n`),
      onForcedExit: () =>
        err.write('quitting without cleaning up; leftovers: podman ps -a --filter label=sysattest=1\n'),
    });

  const image = program
    .command('image')
    .description('manage the container images of each platform (build, list, refresh, rm)')
    .addHelpText(
      'after',
      `
Each platform (distro/release/arch) has one image that generation jobs start from: a minimal
Debian built from the archive with mmdebstrap, or an image / root filesystem you supply. Images
are named localhost/sysattest/<distro>:<release>-<arch> (-g<N> for each generation) and recorded
in <generator home>/images.json ($SYSATTEST_GENERATOR_HOME).`,
    );

  image
    .command('build')
    .description("build a platform's image (Debian: mmdebstrap minbase from the archive + podman import)")
    .argument('<platform>', 'distro/release/arch, e.g. debian/bookworm/amd64 or debian/bookworm/arm64')
    .option('--from-image <ref>', 'use this image (pulled if podman does not have it) instead of the archive')
    .option('--rootfs <file>', 'use this root filesystem tarball instead of the archive')
    .option(
      '--mirror <mirror>',
      'mmdebstrap MIRROR argument (URI or "deb …" line; repeatable; replaces the default mirrors, ' +
        "including security updates); default $SYSATTEST_DEBIAN_MIRROR or mmdebstrap's own",
      collect,
    )
    .option('--force', 'rebuild a platform that has an image (the build becomes its next generation)')
    .option('--if-missing', 'do nothing (exit 0) when the platform has an image already')
    .option('--json', 'print the resulting image record as JSON')
    .option('-q, --quiet', 'print only the result')
    .option('-v, --verbose', "also show mmdebstrap's output")
    .addHelpText(
      'after',
      `
Examples:
  sysattest-generator image build debian/bookworm/amd64
  sysattest-generator image build debian/bookworm/arm64        # needs qemu-user-static (binfmt)
  sysattest-generator image build fedora/41/x86_64 --rootfs fedora-41.tar
  sysattest-generator image build debian/trixie/amd64 --from-image <registry>/debian:trixie

Foreign architectures run through qemu-user-static; scripts/podman-setup.sh installs and
registers it. Ctrl-C stops the build and removes its temporary files and containers.`,
    )
    .action(async (platform: string, opts) => {
      const envMirror = process.env.SYSATTEST_DEBIAN_MIRROR;
      const mirrors: string[] =
        opts.mirror !== undefined
          ? opts.mirror
          : envMirror && !opts.fromImage && !opts.rootfs
            ? [envMirror]
            : [];
      const fleet = fleetFor(opts);
      if (opts.ifMissing && !opts.force) {
        const existing = await fleet.getImage(platform);
        if (existing !== undefined) {
          out.write(
            opts.json
              ? `${JSON.stringify(existing, null, 2)}\n`
              : `${existing.platform}: has an image already (${existing.tag}); nothing to build\n`,
          );
          return;
        }
      }
      const r = await interruptible((signal) =>
        fleet.buildImage(platform, {
          fromImage: opts.fromImage,
          rootfs: opts.rootfs,
          mirrors,
          force: Boolean(opts.force),
          signal,
        }),
      );
      out.write(opts.json ? `${JSON.stringify(r.image, null, 2)}\n` : `${summary('built', r)}\n`);
    });

  image
    .command('list')
    .alias('ls')
    .description("show each platform's image: id, generation, when built and refreshed, package count")
    .argument('[platform]', 'show only this platform')
    .option('--json', 'print the records as JSON (an array)')
    .option('--history', 'also show every generation and what changed in it')
    .action(async (platform: string | undefined, opts) => {
      const fleet = fleetFor({ quiet: true });
      let images: ListedImage[] = await fleet.listImagesWithStatus();
      if (platform !== undefined) {
        const wanted = (await fleet.getImage(platform))?.platform;
        images = images.filter((i) => i.platform === wanted);
        if (images.length === 0) {
          throw new GeneratorError(
            'IMAGE_NOT_FOUND',
            `no image for ${platform} (image build ${platform} makes one)`,
          );
        }
      }
      if (opts.json) {
        out.write(`${JSON.stringify(images, null, 2)}\n`);
        return;
      }
      if (images.length === 0) {
        out.write('no images yet; build one with: sysattest-generator image build debian/bookworm/amd64\n');
        return;
      }
      const rows = [['PLATFORM', 'GEN', 'IMAGE', 'PACKAGES', 'BUILT', 'REFRESHED', 'TAG']];
      for (const i of images) {
        rows.push([
          i.platform,
          String(i.generation),
          i.imageId.slice(0, 12) + (i.present === false ? ' (missing!)' : ''),
          i.packageCount === null ? '?' : String(i.packageCount),
          when(i.builtAt),
          when(i.refreshedAt),
          i.tag,
        ]);
      }
      out.write(`${table(rows)}\n`);
      if (images.some((i) => i.present === null)) {
        err.write('note: podman could not be asked whether the images still exist\n');
      }
      if (opts.history) {
        for (const i of images) {
          out.write(`\n${i.platform}:\n`);
          for (const g of i.history) {
            const state = g.removedAt
              ? `removed ${when(g.removedAt)}`
              : g.generation === i.generation
                ? 'current'
                : 'kept';
            const changes =
              g.changes === null ? 'no previous generation to compare' : `${g.changes.length} change(s)`;
            out.write(
              `  generation ${g.generation} (${g.kind}, ${when(g.createdAt)}, ${g.imageId.slice(0, 12)}, ${state}): ` +
                `${g.packageCount ?? '?'} packages, ${changes}\n`,
            );
            for (const c of g.changes ?? []) out.write(`    ${formatChange(c)}\n`);
          }
        }
      }
    });

  image
    .command('refresh')
    .description("update a platform's image (apt-get update + dist-upgrade) into a new generation")
    .argument('<platform>', 'distro/release/arch')
    .option('-o, --apt-option <name=value>', 'extra apt configuration for this refresh (repeatable)', collect)
    .option(
      '--sources <file>',
      "the image's extra apt sources from now on (snapshot archive, third-party repositories: JSON, see below)",
    )
    .option(
      '--network <name>',
      "podman network for apt (e.g. host, to reach a repository on this host's loopback)",
    )
    .option('--json', 'print the resulting image record as JSON')
    .option('-q, --quiet', 'print only the result')
    .option('-v, --verbose', "also show apt-get's output")
    .addHelpText(
      'after',
      `
The new generation records which packages changed (name: old → new version); see them with
image list --history. The last 2 generations are kept, older images are removed.

--sources FILE replaces the image's extra apt sources (an empty list removes them); without it
they stay as they are. apt checks them as it checks the archive: each InRelease against the
source's key, each .deb against the signed index. The file:
  {"sources": [
    {"name": "snapshot-20240210", "kind": "snapshot", "suites": ["bookworm"], "components": ["main"],
     "uri": "http://<snapshot service>/archive/debian/20240210T000000Z/"},
    {"name": "vendor", "kind": "repository", "suites": ["stable"], "components": ["main"],
     "uri": "https://<vendor's repository>/debian", "signedBy": "/path/to/vendor-key.asc"}]}
A snapshot is checked with the distribution's archive keyring inside the image (or signedBy);
its date is the YYYYMMDDTHHMMSSZ ending its URI (or "snapshotDate"). Extra sources are pinned at
priority 100: a refresh never takes packages from them, a generation takes the exact versions
it asks for. The catalog lists their packages with their origin.`,
    )
    .action(async (platform: string, opts) => {
      const fleet = fleetFor(opts);
      const sources = opts.sources === undefined ? undefined : await loadSourcesFile(opts.sources);
      const r = await interruptible((signal) =>
        fleet.refreshImage(platform, { aptOptions: opts.aptOption, sources, network: opts.network, signal }),
      );
      out.write(opts.json ? `${JSON.stringify(r.image, null, 2)}\n` : `${summary('refreshed to', r)}\n`);
      if (!opts.json && !opts.quiet)
        for (const c of r.generation.changes ?? []) out.write(`  ${formatChange(c)}\n`);
    });

  image
    .command('rm')
    .alias('remove')
    .description("remove a platform's images and record, or one old generation")
    .argument('<platform>', 'distro/release/arch')
    .addOption(new Option('--generation <n>', 'remove only this old generation').argParser(positiveInt))
    .option('--force', 'remove even when containers use the image (podman removes them too)')
    .action(async (platform: string, opts) => {
      const fleet = fleetFor({ quiet: true });
      const r = await interruptible((signal) =>
        fleet.removeImage(platform, { generation: opts.generation, force: Boolean(opts.force), signal }),
      );
      const what = r.platformRemoved
        ? `removed ${r.platform}`
        : `removed generation ${opts.generation} of ${r.platform}`;
      out.write(`${what}${r.removedTags.length > 0 ? ` (${r.removedTags.join(', ')})` : ''}\n`);
    });

  return image;
}
