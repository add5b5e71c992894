import { performance } from 'node:perf_hooks';

/**
 * The leases a worker holds on its claimed jobs, as far as it can know them locally. The server
 * sets a lease's end to its own now + the lease length when it handles a claim or a heartbeat,
 * which is after the worker sent it: so a lease renewed by a request sent at local time t runs at
 * least until t + length, measured on a monotonic clock. While well within that, no other worker
 * can have claimed the job (a claim takes only expired leases), and the worker uploads without
 * asking the server first; past it, or once a heartbeat was refused, it must ask (or not upload).
 */
export class Leases {
  /** Job id → monotonic time the request that last renewed its lease was sent. */
  private readonly renewedAt = new Map<number, number>();
  private readonly lost = new Set<number>();

  constructor(
    private readonly leaseMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A monotonic time to pass to claimed/renewed: take it before sending the request. */
  sendTime(): number {
    return this.now();
  }

  claimed(jobIds: readonly number[], sentAt: number): void {
    for (const id of jobIds) this.renewedAt.set(id, sentAt);
  }

  renewed(jobId: number, sentAt: number): void {
    const before = this.renewedAt.get(jobId);
    if (before !== undefined && !this.lost.has(jobId)) this.renewedAt.set(jobId, Math.max(sentAt, before));
  }

  /** The server said the job is no longer ours (LEASE_LOST, or it is gone). */
  markLost(jobId: number): void {
    this.lost.add(jobId);
  }

  isLost(jobId: number): boolean {
    return this.lost.has(jobId);
  }

  /**
   * Whether the lease surely runs for at least another third of its length: heartbeats renew it
   * every third, so this holds unless they have been failing. That third (200 s of the default
   * 600 s) is also the room left for the clocks of several server processes that disagree.
   */
  surelyHeld(jobId: number): boolean {
    const at = this.renewedAt.get(jobId);
    return at !== undefined && !this.lost.has(jobId) && this.now() - at < (this.leaseMs * 2) / 3;
  }

  /** The job is finished (done, failed or given back): forget it. */
  release(jobId: number): void {
    this.renewedAt.delete(jobId);
    this.lost.delete(jobId);
  }
}
