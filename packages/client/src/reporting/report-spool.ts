import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysattestError, reportUploadSchema, writeFileAtomic, type ReportUpload } from '@sysattest/core';

/**
 * The reports not yet accepted by the server. Each report is written here (atomically, mode 0600,
 * in a 0700 directory) before it is sent, and removed once the server has stored it, so a server
 * that is down, slow or refusing loses nothing: the next run sends what is spooled first, oldest
 * first. A resend is harmless: the server stores a `reportId` once per host (and answers 200).
 *
 * Files are `<UTC time>-<reportId>.json` (so the name orders them) holding the upload body
 * (`{ reportId, hostname, report }`, core `reportUploadSchema`), and are read back as untrusted:
 * bounded, parsed, validated. The spool is bounded (DEFAULT_SPOOL_LIMITS): past it the oldest are
 * dropped, and the caller says so. A report the server will never take (an invalid token, a body
 * over its cap) or that no longer parses is moved aside to `rejected/` (bounded the same way),
 * where the operator can read it, and move it back to resend it once the cause is fixed.
 */
export const SPOOL_DIR_NAME = 'report-spool';
export const REJECTED_DIR_NAME = 'rejected';

export interface SpoolLimits {
  /** Reports kept waiting (oldest dropped past it). */
  maxReports: number;
  /** Their bytes together; also the largest spooled file read back. */
  maxBytes: number;
  /** Reports kept in `rejected/`. */
  maxRejected: number;
}

export const DEFAULT_SPOOL_LIMITS: SpoolLimits = {
  maxReports: 20,
  maxBytes: 64 * 1024 * 1024,
  maxRejected: 20,
};

export class SpoolError extends SysattestError<'SPOOLED_REPORT_INVALID'> {}

/** A report waiting in the spool (or moved aside). */
export interface SpooledReport {
  /** The file's name: `<time>-<reportId>.json`. */
  name: string;
  file: string;
  reportId: string;
  bytes: number;
}

const TEMPORARY_MAX_AGE_MS = 60 * 60 * 1000;
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const SPOOLED_NAME = new RegExp(`^[0-9]{8}T[0-9]{9}Z-(${UUID})\\.json$`);

/**
 * The client's state directory (the spool is its `report-spool/`): `$SYSATTEST_CLIENT_HOME`, else
 * `$XDG_STATE_HOME/sysattest`, else `~/.local/state/sysattest`.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SYSATTEST_CLIENT_HOME) return env.SYSATTEST_CLIENT_HOME;
  return path.join(env.XDG_STATE_HOME || path.join(os.homedir(), '.local/state'), 'sysattest');
}

/** `20261206T170102123Z`: sorts as it happened (on a clock that does not go back). */
function stampOf(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

export class ReportSpool {
  readonly rejectedDir: string;
  private readonly limits: SpoolLimits;

  constructor(
    readonly dir: string,
    limits: Partial<SpoolLimits> = {},
  ) {
    this.rejectedDir = path.join(dir, REJECTED_DIR_NAME);
    this.limits = { ...DEFAULT_SPOOL_LIMITS, ...limits };
  }

  /**
   * Writes `upload` to the spool, then keeps the spool within its bounds by dropping the oldest
   * others (returned, for the caller to say so). Throws when it cannot be written.
   */
  async add(
    upload: ReportUpload,
    now = new Date(),
  ): Promise<{ spooled: SpooledReport; dropped: SpooledReport[] }> {
    const name = `${stampOf(now)}-${upload.reportId}.json`;
    const file = path.join(this.dir, name);
    const text = JSON.stringify(upload);
    await this.ensureDir(this.dir);
    await this.sweepTemporary();
    await writeFileAtomic(file, text, { mode: 0o600 });
    const spooled = { name, file, reportId: upload.reportId, bytes: Buffer.byteLength(text) };
    const dropped = await this.trim(this.dir, this.limits.maxReports, this.limits.maxBytes, name);
    return { spooled, dropped };
  }

  /** The spooled reports, oldest first. */
  pending(): Promise<SpooledReport[]> {
    return this.list(this.dir);
  }

  /** The reports moved aside, oldest first. */
  rejected(): Promise<SpooledReport[]> {
    return this.list(this.rejectedDir);
  }

  /**
   * A spooled report's upload body, read back as untrusted input (SpoolError); undefined when it
   * is gone (another run sent it meanwhile).
   */
  async read(entry: SpooledReport): Promise<ReportUpload | undefined> {
    if (entry.bytes > this.limits.maxBytes) {
      throw new SpoolError('SPOOLED_REPORT_INVALID', `${entry.file} is over ${this.limits.maxBytes} bytes`);
    }
    let json: unknown;
    try {
      const handle = await fs.open(entry.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        json = JSON.parse(await handle.readFile('utf8'));
      } finally {
        await handle.close();
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SpoolError('SPOOLED_REPORT_INVALID', `${entry.file} cannot be read: ${(e as Error).message}`);
    }
    const parsed = reportUploadSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SpoolError(
        'SPOOLED_REPORT_INVALID',
        `${entry.file} is not a report upload (${issue?.path.join('.') || 'body'}: ${issue?.message})`,
      );
    }
    if (parsed.data.reportId !== entry.reportId) {
      throw new SpoolError(
        'SPOOLED_REPORT_INVALID',
        `${entry.file} holds another report (${parsed.data.reportId})`,
      );
    }
    return parsed.data;
  }

  /** Forgets a report the server has stored (already gone: another run sent it too). */
  async remove(entry: SpooledReport): Promise<void> {
    await fs.rm(entry.file, { force: true });
  }

  /**
   * Moves a report the server will never take to `rejected/`, keeping that within its bound;
   * returns where it went and the ones dropped from there.
   */
  async reject(entry: SpooledReport): Promise<{ file: string; dropped: SpooledReport[] }> {
    await this.ensureDir(this.rejectedDir);
    const file = path.join(this.rejectedDir, entry.name);
    await fs.rename(entry.file, file);
    const dropped = await this.trim(this.rejectedDir, this.limits.maxRejected, Infinity, entry.name);
    return { file, dropped };
  }

  /** Removes what an interrupted write left (writeFileAtomic's `.NAME.….tmp`) over an hour ago. */
  private async sweepTemporary(): Promise<void> {
    const names = await fs.readdir(this.dir);
    for (const name of names.filter((n) => n.startsWith('.') && n.endsWith('.tmp'))) {
      const file = path.join(this.dir, name);
      const st = await fs.lstat(file).catch(() => undefined);
      if (st?.isFile() && Date.now() - st.mtimeMs > TEMPORARY_MAX_AGE_MS) await fs.rm(file, { force: true });
    }
  }

  private async ensureDir(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.chmod(dir, 0o700);
  }

  private async list(dir: string): Promise<SpooledReport[]> {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const entries: SpooledReport[] = [];
    for (const name of names.sort()) {
      const reportId = SPOOLED_NAME.exec(name)?.[1];
      if (reportId === undefined) continue;
      const file = path.join(dir, name);
      const st = await fs.lstat(file).catch(() => undefined);
      if (st?.isFile()) entries.push({ name, file, reportId, bytes: st.size });
    }
    return entries;
  }

  /** Drops the oldest reports in `dir` (never `keep`) until at most `maxCount` and `maxBytes` remain. */
  private async trim(
    dir: string,
    maxCount: number,
    maxBytes: number,
    keep: string,
  ): Promise<SpooledReport[]> {
    const entries = await this.list(dir);
    let count = entries.length;
    let bytes = entries.reduce((sum, e) => sum + e.bytes, 0);
    const dropped: SpooledReport[] = [];
    for (const e of entries) {
      if (count <= maxCount && bytes <= maxBytes) break;
      if (e.name === keep) continue;
      await fs.rm(e.file, { force: true });
      dropped.push(e);
      count--;
      bytes -= e.bytes;
    }
    return dropped;
  }
}
