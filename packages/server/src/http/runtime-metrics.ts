/**
 * The standard process and Node.js runtime metrics, as prom-client's `collectDefaultMetrics`
 * names them (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
 * `nodejs_eventloop_lag_seconds`, `nodejs_heap_size_used_bytes`, `nodejs_gc_duration_seconds`…),
 * so the dashboards and alerts written for any Node service work unchanged. They describe the
 * process, so there is one collector per process, made on the first scrape, in a registry of its
 * own (prom-client's global one stays empty); ours (metrics.ts) are rendered beside them.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

let registry: Registry | undefined;

function runtimeRegistry(): Registry {
  if (registry === undefined) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry });
  }
  return registry;
}

/** The runtime metric families in the Prometheus text format 0.0.4. */
export async function runtimeMetricsText(): Promise<string> {
  return runtimeRegistry().metrics();
}
