import type { FileObservation, HashPool } from '@sysattest/core';

export interface HashProgress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
}

/**
 * Hash pool runs over one root, with one progress over all of them: several runs hash at once
 * (the pipeline keeps the threads fed), so progress is what finished runs did plus each running
 * run's share. The total is an estimate (the package database's file lists) until the runs
 * listed more.
 */
export class HashRuns {
  private readonly finished = { files: 0, bytes: 0, listed: 0 };
  private readonly running = new Map<number, { files: number; bytes: number; listed: number }>();
  private nextRun = 0;

  constructor(
    private readonly pool: HashPool,
    private readonly root: string,
    private readonly estimate: number,
    private readonly onProgress?: (p: HashProgress) => void,
  ) {}

  /** One run over `paths`, observations in their order. */
  async run(paths: readonly string[]): Promise<FileObservation[]> {
    if (paths.length === 0) return [];
    const runId = this.nextRun++;
    const mine = { files: 0, bytes: 0, listed: paths.length };
    this.running.set(runId, mine);
    try {
      return await this.pool.inspectAll(this.root, paths, {
        onProgress: (p) => {
          mine.files = p.filesDone;
          mine.bytes = p.bytesDone;
          this.report();
        },
      });
    } finally {
      this.running.delete(runId);
      this.finished.files += paths.length;
      this.finished.bytes += mine.bytes;
      this.finished.listed += paths.length;
    }
  }

  private report(): void {
    if (this.onProgress === undefined) return;
    let { files, bytes, listed } = this.finished;
    for (const r of this.running.values()) {
      files += r.files;
      bytes += r.bytes;
      listed += r.listed;
    }
    this.onProgress({ filesDone: files, filesTotal: Math.max(this.estimate, listed), bytesDone: bytes });
  }
}
