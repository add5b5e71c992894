/**
 * Test support (not part of the server's API): a store filled the way a real server's is, through
 * its own write paths — signed catalog snapshots over several weeks (with upgrades and withdrawals),
 * signed manifests, tracked packages, and jobs in every state with real leases and failures.
 */
import type { Store } from '../store/index.js';
import type { TestGenerator, TestPackage } from './store.js';

export const AMD64 = 'debian/bookworm/amd64';
export const ARM64 = 'debian/bookworm/arm64';
/** A failure log with markup in it: the pages must show it as text. */
export const HOSTILE_LOG =
  'dpkg: error processing archive <img src=x onerror="window.__pwned=1"> (--unpack):\n trying to overwrite /usr/bin/x';
/** A path with markup in it, in the openssl manifest. */
export const HOSTILE_PATH = '/usr/share/doc/openssl/<script>window.__pwned=2</script>.txt';

/** Store options the fixture needs: a job is dead after its first failure. */
export const DASHBOARD_STORE_OPTIONS = { jobs: { maxAttempts: 1 } } as const;

export interface Fixture {
  /** Times of the amd64 snapshots. */
  snapshots: string[];
  deadJobId: number;
  runningJobId: number;
  opensslDigest: string;
}

/** A document time (whole seconds, as the schemas want) `h` hours before `now`. */
const hoursAgo = (now: Date, h: number): string =>
  new Date(now.getTime() - h * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * amd64: snapshots 20 days, 3 days and 2 hours ago; openssl goes 3.0.11 → 3.0.13 → 3.0.15,
 * curl 7.88.1-10 → 7.88.1-10+deb12u5 (3 days ago), ripgrep appears 3 days ago, bash stays.
 * arm64: one snapshot 60 hours ago (stale). Manifests for openssl 3.0.15 and bash; jobs: one
 * running (worker gen-worker-1), one dead after a failure, two pending.
 */
export async function seedDashboardStore(store: Store, gen: TestGenerator, now: Date): Promise<Fixture> {
  await store.addTrustedKey(gen.armoredPublicKey);
  const base: TestPackage[] = [
    { name: 'bash', version: '5.2.15-2+b2' },
    { name: 'coreutils', version: '9.1-1' },
    { name: 'libc6', version: '2.36-9+deb12u4' },
    { name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all' },
  ];
  const t = [hoursAgo(now, 20 * 24), hoursAgo(now, 3 * 24), hoursAgo(now, 2)];
  const snapshots: TestPackage[][] = [
    [...base, { name: 'openssl', version: '3.0.11-1~deb12u1' }, { name: 'curl', version: '7.88.1-10' }],
    [
      ...base,
      { name: 'openssl', version: '3.0.13-1~deb12u1' },
      { name: 'curl', version: '7.88.1-10+deb12u5' },
      { name: 'ripgrep', version: '13.0.0-4+b2' },
    ],
    [
      ...base,
      { name: 'openssl', version: '3.0.15-1~deb12u1' },
      { name: 'curl', version: '7.88.1-10+deb12u5' },
      { name: 'ripgrep', version: '13.0.0-4+b2' },
    ],
  ];
  for (let i = 0; i < t.length; i++) {
    await store.ingestCatalog(await gen.catalog(AMD64, t[i] as string, snapshots[i] as TestPackage[]));
  }
  await store.ingestCatalog(
    await gen.catalog(ARM64, hoursAgo(now, 60), [...base, { name: 'openssl', version: '3.0.13-1~deb12u1' }]),
  );

  const openssl = await gen.manifest(AMD64, { name: 'openssl', version: '3.0.15-1~deb12u1' }, [
    { path: '/usr/bin/openssl', content: 'openssl 3.0.15 binary', mode: '0755' },
    { path: '/etc/ssl/openssl.cnf', content: '# openssl config' },
    { path: '/usr/share/doc/openssl/changelog.Debian.gz', content: 'changelog' },
    { path: HOSTILE_PATH, content: 'hostile' },
  ]);
  await store.ingestManifest(openssl);
  await store.ingestManifest(await gen.manifest(AMD64, { name: 'bash', version: '5.2.15-2+b2' }));
  await store.trackPackages(AMD64, ['openssl', 'bash'], 'config');
  await store.trackPackages(AMD64, ['curl'], 'client-request');

  // Jobs: curl's newest (queued by tracking) runs; coreutils fails for good; libc6 and ripgrep wait.
  const curl = await store.enqueueJob(AMD64, { name: 'curl', version: '7.88.1-10+deb12u5', arch: 'amd64' });
  const coreutils = await store.enqueueJob(AMD64, { name: 'coreutils', version: '9.1-1', arch: 'amd64' });
  await store.enqueueJob(AMD64, { name: 'libc6', version: '2.36-9+deb12u4', arch: 'amd64' });
  await store.enqueueJob(AMD64, { name: 'ripgrep', version: '13.0.0-4+b2', arch: 'amd64' });
  const claimed = await store.claimJobs('gen-worker-1', [AMD64], 2, 600);
  const running = claimed.find((j) => j.id === curl.id);
  const failing = claimed.find((j) => j.id === coreutils.id);
  if (running === undefined || failing === undefined)
    throw new Error('fixture: the jobs were not claimed in order');
  // The store is opened with jobs.maxAttempts = 1 (see DASHBOARD_STORE_OPTIONS): one failure is final.
  const dead = await store.failJob(failing.id, 'gen-worker-1', HOSTILE_LOG);
  if (dead.state !== 'dead') throw new Error('fixture: open the store with DASHBOARD_STORE_OPTIONS');
  await store.heartbeat(running.id, 'gen-worker-1');
  return { snapshots: t, deadJobId: dead.id, runningJobId: running.id, opensslDigest: openssl.digest };
}
