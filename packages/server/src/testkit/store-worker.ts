/**
 * A generation worker in its own process, for the store's multi-process tests (not part of the
 * store's API). Usage: node store-worker.js MODE URL WORKER PLATFORM
 * with the generator's keys in SYSATTEST_TEST_SECRET_KEY / SYSATTEST_TEST_PUBLIC_KEY.
 * - `drain`: claims jobs until none are left, makes and uploads each job's manifest, completes
 *   it; prints {"claimed": [ids]} on stdout.
 * - `claim-and-hang`: claims up to 10 jobs with a 1-second lease, prints {"claimed": [ids]},
 *   then waits to be killed (a worker that dies mid-job).
 * - `open`: opens the store (running migrations) and prints the schema version.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '../store/store.js';
import { TestGenerator } from './store.js';

async function main(): Promise<void> {
  const [mode, url, worker = 'w', platform = 'debian/bookworm/amd64'] = process.argv.slice(2);
  const store = await openStore(url);
  try {
    if (mode === 'open') {
      process.stdout.write(JSON.stringify(await store.schemaVersion()));
      return;
    }
    if (mode === 'claim-and-hang') {
      const jobs = await store.claimJobs(worker, [platform], 10, 1);
      process.stdout.write(`${JSON.stringify({ claimed: jobs.map((j) => j.id) })}\n`);
      await sleep(60_000);
      return;
    }
    if (mode !== 'drain') throw new Error(`unknown mode ${mode}`);
    const generator = await TestGenerator.fromArmored(
      process.env.SYSATTEST_TEST_SECRET_KEY as string,
      process.env.SYSATTEST_TEST_PUBLIC_KEY as string,
    );
    const claimed: number[] = [];
    let idle = 0;
    while (idle < 5) {
      const jobs = await store.claimJobs(worker, [platform], 3, 300);
      if (jobs.length === 0) {
        idle++;
        await sleep(20);
        continue;
      }
      idle = 0;
      for (const job of jobs) {
        claimed.push(job.id);
        const manifest = await generator.manifest(job.targetPlatform, {
          name: job.name,
          version: job.version,
          arch: job.arch,
        });
        await store.ingestManifest(manifest);
        await store.completeJob(job.id, worker);
      }
    }
    process.stdout.write(JSON.stringify({ claimed }));
  } finally {
    await store.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
