/**
 * In-process measurements of the HTTP server: what `/metrics` exposes (Prometheus text format
 * 0.0.4) and what the dashboard's Health page shows (`snapshot()`).
 *
 * Usage: one ServerMetrics per process, given to buildApp (`metrics` option); buildApp records
 * every response with `observe` and every refused-by-rate-limit request with `rateLimited`.
 * Everything is in memory and bounded: counters per (route, method, status class), a cumulative
 * latency histogram, per-second counts for the last 5 minutes, and the latencies of the most recent
 * 10,000 requests for percentiles.
 */

import type { StoreStats } from '../store/index.js';

/** Upper bounds (seconds) of the latency histogram buckets. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Seconds of per-second history kept (the longest window snapshot() accepts). */
const HISTORY_SECONDS = 300;
/** Most recent request latencies kept for percentiles. */
const RESERVOIR = 10_000;

/** What the Health page shows; every figure is over `windowSeconds` unless its name says total. */
export interface MetricsSnapshot {
  /** When the snapshot was taken (ISO 8601). */
  at: string;
  /** Seconds since this ServerMetrics was created (the process start, in practice). */
  uptimeSeconds: number;
  windowSeconds: number;
  /** Requests answered in the window, and per second over it. */
  requests: number;
  requestsPerSecond: number;
  /** Answers with status >= 400 (client and server errors) and >= 500 alone, in the window. */
  errors: number;
  serverErrors: number;
  /** errors / requests (0 when there were no requests). */
  errorRate: number;
  /** Requests refused by the rate limit (429) in the window. */
  rateLimited: number;
  /** Latency percentiles (milliseconds) of the requests in the window; undefined with none. */
  latencyMs: { p50?: number; p95?: number; p99?: number; max?: number };
  /** Since start. */
  totalRequests: number;
  totalErrors: number;
}

/** Status class label: "2xx", "4xx", … */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

interface Second {
  /** Epoch second this slot holds (slots are reused round-robin). */
  at: number;
  requests: number;
  errors: number;
  serverErrors: number;
  rateLimited: number;
}

function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Prometheus label value escaping (backslash, quote, newline). */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A number as Prometheus writes it. */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** One metric family for renderPrometheus. */
export interface Gauge {
  name: string;
  help: string;
  type?: 'gauge' | 'counter';
  samples: { labels?: Record<string, string>; value: number }[];
}

/** Renders metric families in the Prometheus text exposition format 0.0.4. */
export function renderFamilies(families: readonly Gauge[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`;
    out += `# TYPE ${f.name} ${f.type ?? 'gauge'}\n`;
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${label(v)}"`).join(',')}}`;
      out += `${f.name}${l} ${num(s.value)}\n`;
    }
  }
  return out;
}

export class ServerMetrics {
  readonly #clock: () => number;
  readonly #startedAt: number;
  /** (route \0 method \0 class) → count. */
  readonly #requests = new Map<string, number>();
  readonly #bucketCounts = LATENCY_BUCKETS.map(() => 0);
  #latencySum = 0;
  #latencyCount = 0;
  #totalErrors = 0;
  #totalServerErrors = 0;
  #totalRateLimited = 0;
  /** (reason \0 what) → jobs or tracked packages that lookups did not write (queue policy). */
  readonly #deferred = new Map<string, number>();
  #documentsOmitted = 0;
  readonly #seconds: Second[] = Array.from({ length: HISTORY_SECONDS }, () => ({
    at: -1,
    requests: 0,
    errors: 0,
    serverErrors: 0,
    rateLimited: 0,
  }));
  /** Ring buffer of [epoch ms, latency ms]. */
  readonly #recent = new Float64Array(RESERVOIR * 2);
  #recentNext = 0;
  #recentSize = 0;

  /** `clock`: milliseconds since the epoch (default Date.now; tests pass their own). */
  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
    this.#startedAt = clock();
  }

  #second(now: number): Second {
    const at = Math.floor(now / 1000);
    const slot = this.#seconds[at % HISTORY_SECONDS] as Second;
    if (slot.at !== at) {
      slot.at = at;
      slot.requests = 0;
      slot.errors = 0;
      slot.serverErrors = 0;
      slot.rateLimited = 0;
    }
    return slot;
  }

  /**
   * Records one answered request. `route`: the route pattern (`/v1/jobs/:id/claim`), or
   * `unmatched` for a URL no route serves (never the raw URL: labels stay bounded).
   */
  observe(route: string, method: string, status: number, latencyMs: number): void {
    const now = this.#clock();
    const key = `${route}\u0000${method}\u0000${statusClass(status)}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    const seconds = latencyMs / 1000;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= (LATENCY_BUCKETS[i] as number)) {
        this.#bucketCounts[i] = (this.#bucketCounts[i] as number) + 1;
        break;
      }
    }
    this.#latencySum += seconds;
    this.#latencyCount++;
    const s = this.#second(now);
    s.requests++;
    if (status >= 400) {
      s.errors++;
      this.#totalErrors++;
    }
    if (status >= 500) {
      s.serverErrors++;
      this.#totalServerErrors++;
    }
    this.#recent[this.#recentNext * 2] = now;
    this.#recent[this.#recentNext * 2 + 1] = latencyMs;
    this.#recentNext = (this.#recentNext + 1) % RESERVOIR;
    this.#recentSize = Math.min(RESERVOIR, this.#recentSize + 1);
  }

  /** Records a request the rate limit refused (it is also observed, as a 4xx). */
  rateLimited(): void {
    this.#totalRateLimited++;
    this.#second(this.#clock()).rateLimited++;
  }

  /** Records what a lookup's queue policy kept it from writing. */
  lookupDeferred(reason: string, jobs: number, tracked: number): void {
    for (const [what, n] of [
      ['jobs', jobs],
      ['tracked', tracked],
    ] as const) {
      if (n === 0) continue;
      const key = `${reason}\u0000${what}`;
      this.#deferred.set(key, (this.#deferred.get(key) ?? 0) + n);
    }
  }

  /** Records `ok` lookup items answered with their digest only (the answer's document budget was spent). */
  documentsOmitted(n: number): void {
    this.#documentsOmitted += n;
  }

  /**
   * Figures over the last `windowSeconds` (1 to 300, default 60): request rate, error rate,
   * latency percentiles (of at most the 10,000 most recent requests), uptime. Cheap enough to call
   * once a second.
   */
  snapshot(windowSeconds = 60): MetricsSnapshot {
    const window = Math.max(1, Math.min(HISTORY_SECONDS, Math.floor(windowSeconds)));
    const now = this.#clock();
    const nowSecond = Math.floor(now / 1000);
    let requests = 0;
    let errors = 0;
    let serverErrors = 0;
    let rateLimited = 0;
    for (const s of this.#seconds) {
      if (s.at > nowSecond - window && s.at <= nowSecond) {
        requests += s.requests;
        errors += s.errors;
        serverErrors += s.serverErrors;
        rateLimited += s.rateLimited;
      }
    }
    const since = now - window * 1000;
    const latencies: number[] = [];
    for (let i = 0; i < this.#recentSize; i++) {
      if ((this.#recent[i * 2] as number) > since) latencies.push(this.#recent[i * 2 + 1] as number);
    }
    latencies.sort((a, b) => a - b);
    const round = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 100) / 100);
    const latencyMs: MetricsSnapshot['latencyMs'] = {};
    for (const [k, p] of [
      ['p50', 50],
      ['p95', 95],
      ['p99', 99],
      ['max', 100],
    ] as const) {
      const v = round(percentile(latencies, p));
      if (v !== undefined) latencyMs[k] = v;
    }
    return {
      at: new Date(now).toISOString(),
      uptimeSeconds: Math.round((now - this.#startedAt) / 1000),
      windowSeconds: window,
      requests,
      requestsPerSecond: Math.round((requests / window) * 100) / 100,
      errors,
      serverErrors,
      errorRate: requests === 0 ? 0 : Math.round((errors / requests) * 10_000) / 10_000,
      rateLimited,
      latencyMs,
      totalRequests: this.#latencyCount,
      totalErrors: this.#totalErrors,
    };
  }

  /** The in-process metric families (the caller adds the database's: see buildApp's /metrics). */
  families(): Gauge[] {
    const requests: Gauge['samples'] = [...this.#requests]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => {
        const [route = '', method = '', status = ''] = key.split('\u0000');
        return { labels: { route, method, status }, value };
      });
    return [
      {
        name: 'sysattest_http_requests_total',
        help: 'HTTP requests answered, by route pattern, method and status class.',
        type: 'counter',
        samples: requests,
      },
      {
        name: 'sysattest_http_errors_total',
        help: 'HTTP answers with a status of 400 or more.',
        type: 'counter',
        samples: [{ value: this.#totalErrors }],
      },
      {
        name: 'sysattest_http_server_errors_total',
        help: 'HTTP answers with a status of 500 or more.',
        type: 'counter',
        samples: [{ value: this.#totalServerErrors }],
      },
      {
        name: 'sysattest_http_rate_limited_total',
        help: 'Requests refused by the per-client rate limit (429).',
        type: 'counter',
        samples: [{ value: this.#totalRateLimited }],
      },
      {
        name: 'sysattest_lookup_deferred_total',
        help: 'Generation jobs (what="jobs") and tracked packages (what="tracked") lookups did not create: over the anonymous quota (reason="quota") or anonymous while queueing needs a token (reason="token-required").',
        type: 'counter',
        samples: [...this.#deferred]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([key, value]) => {
            const [reason = '', what = ''] = key.split('\u0000');
            return { labels: { reason, what }, value };
          }),
      },
      {
        name: 'sysattest_lookup_documents_omitted_total',
        help: 'Manifests lookups answered by digest only because the answer reached its document budget.',
        type: 'counter',
        samples: [{ value: this.#documentsOmitted }],
      },
      {
        name: 'sysattest_process_uptime_seconds',
        help: 'Seconds since the server started.',
        samples: [{ value: Math.round((this.#clock() - this.#startedAt) / 1000) }],
      },
    ];
  }

  /** The latency histogram, rendered separately (its sample names differ from its family name). */
  histogramText(): string {
    const name = 'sysattest_http_request_duration_seconds';
    let out = `# HELP ${name} Time from receiving a request to sending its answer.\n# TYPE ${name} histogram\n`;
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((le, i) => {
      cumulative += this.#bucketCounts[i] as number;
      out += `${name}_bucket{le="${le}"} ${cumulative}\n`;
    });
    out += `${name}_bucket{le="+Inf"} ${this.#latencyCount}\n`;
    out += `${name}_sum ${num(this.#latencySum)}\n${name}_count ${this.#latencyCount}\n`;
    return out;
  }

  /** Everything in-process, in Prometheus text format. */
  render(extra: readonly Gauge[] = []): string {
    return renderFamilies([...this.families(), ...extra]) + this.histogramText();
  }
}

/** Database figures for /metrics, in Prometheus families. */
export function storeFamilies(stats: StoreStats, now: Date): Gauge[] {
  const jobs: Gauge['samples'] = [];
  for (const p of stats.platforms) {
    for (const [state, value] of Object.entries(p.jobs)) {
      jobs.push({ labels: { platform: p.platform, state }, value });
    }
  }
  const oldest =
    stats.oldestDueJobSince === undefined
      ? 0
      : Math.max(0, (now.getTime() - Date.parse(stats.oldestDueJobSince)) / 1000);
  return [
    {
      name: 'sysattest_jobs',
      help: 'Generation jobs by the platform that builds them and state (retrying: pending ones that failed before).',
      samples: jobs,
    },
    {
      name: 'sysattest_jobs_oldest_due_age_seconds',
      help: 'How long the longest-waiting claimable pending job has been due (0: none waiting).',
      samples: [{ value: Math.round(oldest) }],
    },
    {
      name: 'sysattest_manifests',
      help: 'Manifests stored, by platform.',
      samples: stats.platforms.map((p) => ({ labels: { platform: p.platform }, value: p.manifests })),
    },
    {
      name: 'sysattest_catalog_snapshots',
      help: 'Catalog snapshots stored, by platform.',
      samples: stats.platforms.map((p) => ({ labels: { platform: p.platform }, value: p.catalogSnapshots })),
    },
    {
      name: 'sysattest_manifests_total_stored',
      help: 'Manifests stored, all platforms.',
      samples: [{ value: stats.manifests }],
    },
    {
      name: 'sysattest_manifest_conflicts',
      help: 'Uploads refused because other bytes were stored for the same version.',
      samples: [{ value: stats.conflicts }],
    },
    {
      name: 'sysattest_database_bytes',
      help: 'Bytes the database occupies.',
      samples: [{ value: stats.databaseBytes }],
    },
  ];
}
