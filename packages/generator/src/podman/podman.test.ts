import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GeneratorError } from '../errors.js';
import { Podman, podmanMisconfiguration, SYSATTEST_LABEL_FILTER } from './podman.js';

/**
 * The driver against the real podman, with a tiny image made here from a few of the host's own
 * binaries and their libraries (no registry, no mmdebstrap: a few seconds).
 */

const RUN = `${process.pid}-${Date.now().toString(36)}`;
const TEST_LABEL = `sysattest.test=podman-${RUN}`;
const IMAGE = `localhost/sysattest-test-podman-${RUN}/mini:1`;
const podman = new Podman({ labels: { 'sysattest.test': `podman-${RUN}` } });

function oneLine(code: string, re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof GeneratorError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return true;
  };
}

/** A root filesystem tarball with sleep, cat, true, false, sh and the libraries they need. */
function miniRootfs(dir: string): string {
  const root = path.join(dir, 'root');
  const files = new Set<string>();
  for (const bin of ['sleep', 'cat', 'true', 'false', 'sh', 'ls']) {
    const p = [`/usr/bin/${bin}`, `/bin/${bin}`].find((f) => fs.existsSync(f));
    if (!p) throw new Error(`no ${bin} on this host`);
    files.add(p);
    const ldd = spawnSync('ldd', [p], { encoding: 'utf8' }).stdout;
    for (const m of ldd.matchAll(/(\/[^\s]+)/g)) files.add(m[1]!);
  }
  for (const f of files) {
    const dest = path.join(root, f);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(fs.realpathSync(f), dest);
    fs.chmodSync(dest, 0o755);
  }
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc', 'marker'), 'from the host\n');
  const tar = path.join(dir, 'mini.tar');
  execFileSync('tar', ['-C', root, '-cf', tar, '.']);
  return tar;
}

function ours(): string[] {
  const out = execFileSync(
    'podman',
    ['ps', '-aq', '--filter', `label=${SYSATTEST_LABEL_FILTER}`, '--filter', `label=${TEST_LABEL}`],
    {
      encoding: 'utf8',
    },
  );
  return out.split('\n').filter(Boolean);
}

describe('podman driver: faults', () => {
  it('says how to install podman when it is missing (one line)', async () => {
    const missing = new Podman({ binary: '/nonexistent/podman' });
    await assert.rejects(
      missing.check(),
      oneLine('PODMAN_MISSING', /podman is not installed.*apt-get install podman runc/),
    );
    await assert.rejects(missing.imageExists('x'), { code: 'PODMAN_MISSING' });
  });

  it('recognizes the misconfigurations this kind of host has, from podman’s own messages', () => {
    const rlimit =
      'Error: runc: runc create failed: unable to start container process: error during container init: error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: OCI permission denied';
    const m1 = podmanMisconfiguration(rlimit);
    assert.match(
      m1 ?? '',
      /rlimits exceed this host's hard limits.*runtime = "runc".*default_ulimits.*podman-setup\.sh/,
    );
    const crun =
      'Error: crun: cgroups in hybrid mode not supported, drop all controllers from cgroupv2: OCI runtime error';
    assert.match(podmanMisconfiguration(crun) ?? '', /crun does not support.*hybrid.*runtime = "runc"/);
    const setrlimit =
      'Error: crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted: OCI permission denied';
    assert.match(podmanMisconfiguration(setrlimit) ?? '', /rlimits/);
    assert.equal(podmanMisconfiguration('Error: image not known'), undefined);
    assert.equal(podmanMisconfiguration('W: a tool in the container said setrlimit failed'), undefined);
  });

  it('reports a runtime that is not installed as a misconfiguration, with the fix', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-podman-test-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const conf = path.join(dir, 'containers.conf');
    fs.writeFileSync(conf, '[engine]\nruntime = "sysattest-no-such-runtime"\n');
    const broken = new Podman({ env: { ...process.env, CONTAINERS_CONF: conf } });
    await assert.rejects(
      broken.check(),
      oneLine('PODMAN_MISCONFIGURED', /runtime = "runc".*podman-setup\.sh/),
    );
  });

  it('refuses references that podman would read as options', async () => {
    await assert.rejects(podman.imageExists('--all'), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(podman.removeContainer('-f'), { code: 'INVALID_ARGUMENT' });
  });
});

describe('podman driver: images and containers', () => {
  let dir: string;

  before(async () => {
    await podman.check();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-podman-test-'));
    const id = await podman.importImage(miniRootfs(dir), {
      tag: IMAGE,
      changes: ['ENV PATH=/usr/local/bin:/usr/bin:/bin', 'LABEL org.sysattest.test=yes'],
      arch: 'amd64',
      message: 'driver test',
    });
    assert.match(id, /^[0-9a-f]{64}$/);
  });

  after(async () => {
    await podman.removeLabelledContainers({ labels: [SYSATTEST_LABEL_FILTER, TEST_LABEL] }).catch(() => {});
    spawnSync('podman', ['rmi', '--force', IMAGE, `${IMAGE}-committed`]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(ours(), [], 'no container of this test is left');
  });

  it('checks podman once and reports what it runs', async () => {
    const info = await podman.check();
    assert.match(info.version, /^\d+\.\d+/);
    assert.ok(info.runtime.length > 0);
    assert.equal(await podman.check(), info);
  });

  it('imports an image with our config and no command; inspect, exists, missing', async () => {
    const info = await podman.imageInspect(IMAGE);
    assert.deepEqual(info.repoTags, [IMAGE]);
    assert.equal(info.architecture, 'amd64');
    assert.equal(info.cmd, null);
    assert.equal(info.entrypoint, null);
    assert.ok(info.env.includes('PATH=/usr/local/bin:/usr/bin:/bin'));
    assert.equal(info.labels['org.sysattest.test'], 'yes');
    assert.equal(await podman.imageExists(IMAGE), true);
    assert.equal(await podman.imageExists('localhost/sysattest-test-none/x:y'), false);
    await assert.rejects(
      podman.imageInspect('localhost/sysattest-test-none/x:y'),
      oneLine('IMAGE_NOT_FOUND', /no image/),
    );
    assert.equal(
      await podman.removeImage('localhost/sysattest-test-none/x:y', { ignoreMissing: true }),
      false,
    );
  });

  it('runs one-shot containers with input, and reports failing and missing commands', async () => {
    const r = await podman.run(IMAGE, ['cat'], { input: 'through stdin', network: 'none' });
    assert.equal(r.stdout, 'through stdin');
    await assert.rejects(
      podman.run(IMAGE, ['false'], { network: 'none' }),
      oneLine('PODMAN_FAILED', /false .* exited with 1/),
    );
    const allowed = await podman.run(IMAGE, ['false'], { network: 'none', allowFailure: true });
    assert.equal(allowed.code, 1);
    await assert.rejects(
      podman.run(IMAGE, ['no-such-tool'], { network: 'none' }),
      oneLine('PODMAN_FAILED', /no-such-tool .*command not found in the image/),
    );
    assert.deepEqual(ours(), [], '--rm removed them');
  });

  it('creates labelled containers, execs in them, mounts them, commits and exports them', async () => {
    const c = await podman.createContainer(IMAGE, {
      network: 'none',
      labels: { 'sysattest.purpose': 'test' },
    });
    try {
      const listed = await podman.listContainers({ labels: [SYSATTEST_LABEL_FILTER, TEST_LABEL] });
      assert.deepEqual(
        listed.map((x) => x.id),
        [c],
      );
      assert.equal(listed[0]!.labels['sysattest.purpose'], 'test');
      await podman.startContainer(c);
      const r = await podman.exec(c, ['cat', '/etc/marker']);
      assert.equal(r.stdout, 'from the host\n');
      const piped = await podman.exec(c, ['cat'], { input: 'x' });
      assert.equal(piped.stdout, 'x');
      await assert.rejects(
        podman.exec(c, ['ls', '/nonexistent']),
        oneLine('PODMAN_FAILED', /ls \/nonexistent in container .* exited with 2/),
      );

      const mnt = await podman.mount(c);
      assert.equal(fs.readFileSync(path.join(mnt, 'etc', 'marker'), 'utf8'), 'from the host\n');
      await podman.unmount(c);

      const extra = path.join(dir, 'extra');
      fs.writeFileSync(extra, 'copied in');
      await podman.copyInto(c, extra, '/etc/extra');
      assert.equal((await podman.exec(c, ['cat', '/etc/extra'])).stdout, 'copied in');

      const committed = await podman.commit(c, `${IMAGE}-committed`, { changes: ['CMD []'] });
      assert.equal((await podman.imageInspect(committed)).cmd, null);
      const tar = path.join(dir, 'export.tar');
      await podman.exportContainer(c, tar);
      const names = execFileSync('tar', ['-tf', tar], { encoding: 'utf8' });
      assert.match(names, /etc\/extra/);
    } finally {
      await podman.removeContainer(c);
    }
    assert.deepEqual(ours(), []);
    await podman.removeContainer(c); // already gone: fine
  });

  it('stops on abort and on time limits, and leaves no container behind', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1500);
    await assert.rejects(podman.run(IMAGE, ['sleep', '60'], { signal: ac.signal, network: 'none' }), {
      code: 'INTERRUPTED',
    });
    await assert.rejects(
      podman.run(IMAGE, ['sleep', '60'], { timeoutMs: 1500, network: 'none' }),
      oneLine('PODMAN_TIMEOUT', /did not finish within/),
    );
    const c = await podman.createContainer(IMAGE, { network: 'none' });
    try {
      await podman.startContainer(c);
      const ac2 = new AbortController();
      setTimeout(() => ac2.abort(), 1000);
      await assert.rejects(podman.exec(c, ['sleep', '60'], { signal: ac2.signal }), { code: 'INTERRUPTED' });
    } finally {
      await podman.removeContainer(c);
    }
    assert.deepEqual(ours(), []);
  });
});
