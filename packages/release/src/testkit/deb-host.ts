import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/**
 * A fresh machine for a .deb test: one `podman run --rm` of a bookworm image with the built
 * package's directory at /deb and the test's files at /keys (both read-only), host networking so
 * it reaches servers on loopback, and a bash script whose steps print `### <name>` headers. The
 * output comes back split by those headers.
 */
export interface DebHostRun {
  /** The image to start (a cached bookworm of the test image fleet). */
  image: string;
  /** The directory holding the .deb, mounted at /deb. */
  debDir: string;
  /** The test's files, mounted at /keys. */
  keysDir: string;
  /** Labels the container, so a sweep can find one a killed test left. */
  label: string;
  /** Bash script lines; a step starts with `echo "### name"`. */
  script: string[];
}

/** Runs the script in a fresh container; fails the test if the script itself fails. */
export function runOnDebHost(run: DebHostRun): Map<string, string> {
  const r = spawnSync(
    'podman',
    [
      'run',
      '--rm',
      '--network',
      'host',
      '--label',
      `sysattest.test=${run.label}`,
      '-v',
      `${path.resolve(run.debDir)}:/deb:ro`,
      '-v',
      `${path.resolve(run.keysDir)}:/keys:ro`,
      run.image,
      'bash',
      '-c',
      run.script.join('\n'),
    ],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: 5 * 60_000 },
  );
  assert.equal(r.status, 0, `the container script failed: ${r.stderr}\n${r.stdout}`);
  return sections(r.stdout);
}

/** `### name` headers → the text under each. */
export function sections(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of out.split(/^### /m).slice(1)) {
    const nl = part.indexOf('\n');
    map.set(part.slice(0, nl).trim(), part.slice(nl + 1));
  }
  return map;
}
