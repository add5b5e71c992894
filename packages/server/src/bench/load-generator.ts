/**
 * A bounded-concurrency HTTP load generator, run as its own process so that it does not share an
 * event loop with the server it measures. Loopback only: it refuses any other host.
 *
 * Usage: node load-generator.js --url http://127.0.0.1:PORT/v1/lookup --body FILE
 *          [--seconds 60] [--concurrency 8] [--token SECRET]
 * FILE holds a JSON array of request bodies; each request POSTs the next one (round robin).
 * Prints one JSON line: { requests, errors, firstErrors, seconds, perSecond, latencyMs: {p50,p90,p99,max} }.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    body: { type: 'string' },
    seconds: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
    token: { type: 'string' },
  },
});

function fail(message: string): never {
  process.stderr.write(`load-generator: ${message}\n`);
  process.exit(64);
}

const url = new URL(args.url ?? fail('--url is required'));
if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) fail(`${url.hostname} is not loopback`);
const bodies = (
  JSON.parse(fs.readFileSync(args.body ?? fail('--body is required'), 'utf8')) as unknown[]
).map((b) => JSON.stringify(b));
if (bodies.length === 0) fail('no request bodies');
const seconds = Number(args.seconds);
const concurrency = Number(args.concurrency);
if (!(seconds > 0 && seconds <= 3600) || !(concurrency >= 1 && concurrency <= 256)) {
  fail('--seconds 1..3600, --concurrency 1..256');
}
const headers: Record<string, string> = { 'content-type': 'application/json' };
if (args.token) headers.authorization = `Bearer ${args.token}`;

const latencies: number[] = [];
const firstErrors: string[] = [];
let errors = 0;
let next = 0;
const start = performance.now();
const end = start + seconds * 1000;

async function client(): Promise<void> {
  while (performance.now() < end) {
    const body = bodies[next++ % bodies.length] as string;
    const t0 = performance.now();
    try {
      const res = await fetch(url, { method: 'POST', headers, body });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${res.status} ${text.slice(0, 200)}`);
      latencies.push(performance.now() - t0);
    } catch (e) {
      errors++;
      if (firstErrors.length < 5) firstErrors.push(e instanceof Error ? e.message : String(e));
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, () => client()));
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number): number =>
  Math.round(
    (latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? NaN) * 10,
  ) / 10;
process.stdout.write(
  `${JSON.stringify({
    requests: latencies.length + errors,
    errors,
    firstErrors,
    seconds: Math.round(elapsed * 100) / 100,
    perSecond: Math.round(((latencies.length + errors) / elapsed) * 10) / 10,
    latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: pct(100) },
  })}\n`,
);
