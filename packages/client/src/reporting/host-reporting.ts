import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPORT_LIMITS, reportInconsistency, reportUploadSchema, type ReportUpload } from '@sysattest/core';
import { type ClientConfig } from '../config/index.js';
import { ServerClient } from '../transport/index.js';
import type { VerifyReport } from '../verify/index.js';
import { deliverSpool, permanentRefusal, sendReport, serverSaid } from './report-delivery.js';
import { ReportSpool, SPOOL_DIR_NAME, defaultStateDir } from './report-spool.js';
import { defaultReporterTokenFile, readReporterToken } from './reporter-token.js';

/**
 * `sysattest verify --report` (config `report: true`): after the verdict is printed and the exit
 * status set, the JSON report goes to the server's `POST /v1/reports` with the host's reporter
 * token. Nothing here changes the exit status or what was printed: an upload that fails is one
 * line on stderr, and the report stays in the spool (report-spool.ts) for the next run.
 * Misconfiguration (no server, a token file others may read) is refused before the check runs,
 * like any other configuration error (exit 64).
 */

/** Sending (spooled reports included) starts no new request after this long. */
export const REPORT_SEND_BUDGET_MS = 2 * 60_000;

export interface HostReporting {
  spool: ReportSpool;
  /** Undefined with --offline: reports are spooled only. */
  client?: ServerClient;
  tokenFile: string;
  log: (line: string) => void;
}

export interface ReportingFlags {
  report?: boolean;
  reportTokenFile?: string;
  offline?: boolean;
}

/** Undefined when reporting is off; ConfigError (exit 64) when it is on but cannot work. */
export function prepareReporting(
  config: ClientConfig,
  flags: ReportingFlags & { server: string | undefined },
  log: (line: string) => void,
): HostReporting | undefined {
  if (!(flags.report ?? config.report ?? false)) return undefined;
  const tokenFile = flags.reportTokenFile ?? config.reportTokenFile ?? defaultReporterTokenFile();
  const spool = new ReportSpool(path.join(config.stateDir ?? defaultStateDir(), SPOOL_DIR_NAME));
  if (flags.offline || flags.server === undefined) return { spool, tokenFile, log };
  const client = new ServerClient({
    url: flags.server,
    token: readReporterToken(tokenFile),
    timeoutMs: (config.timeoutSeconds ?? 60) * 1000,
  });
  return { spool, client, tokenFile, log };
}

/** The upload body of a report: a fresh id (the server stores each id once per host). */
export function reportUpload(report: VerifyReport, hostname = os.hostname()): ReportUpload {
  return {
    reportId: randomUUID(),
    hostname: hostname.slice(0, REPORT_LIMITS.hostNameLength),
    report,
  };
}

/** Spools the report, then sends what is spooled. Never throws: each trouble is a line on stderr. */
export async function submitReport(reporting: HostReporting, report: VerifyReport): Promise<void> {
  const { log } = reporting;
  try {
    const upload = reportUpload(report);
    const invalid = whyNotSendable(upload);
    if (invalid !== undefined) {
      log(`the report cannot be sent: ${invalid} (the server would refuse it); it is not kept`);
      return;
    }
    const spooled = await spoolReport(reporting, upload);
    if (reporting.client === undefined) {
      if (spooled)
        log(`the report waits in ${reporting.spool.dir}: the next run that reaches the server sends it`);
      else log('the report was neither sent (offline) nor kept');
      return;
    }
    if (!spooled) return sendUnspooled(reporting, reporting.client, upload);
    const result = await deliverSpool(reporting.spool, {
      client: reporting.client,
      tokenFile: reporting.tokenFile,
      deadline: Date.now() + REPORT_SEND_BUDGET_MS,
      log,
    });
    const latest = result.sent.at(-1);
    if (latest !== undefined && latest.reportId === upload.reportId) {
      const earlier = result.sent.length - 1;
      log(
        `report sent to ${reporting.client.where} as host ${latest.host} (verdict ${latest.verdict})` +
          (earlier > 0
            ? `, after ${earlier} earlier ${earlier === 1 ? 'report' : 'reports'} from the spool`
            : ''),
      );
    }
  } catch (e) {
    log(`reporting failed: ${(e as Error).message}`);
  }
}

/** What the server would refuse in a report: over a bound of the protocol (a huge machine), or a bug. */
function whyNotSendable(upload: ReportUpload): string | undefined {
  const parsed = reportUploadSchema.safeParse(upload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `${issue?.path.join('.') || 'body'}: ${issue?.message}`;
  }
  return reportInconsistency(parsed.data.report);
}

/** Writes the report to the spool; false (with a line) when it cannot be written. */
async function spoolReport(reporting: HostReporting, upload: ReportUpload): Promise<boolean> {
  try {
    const { dropped } = await reporting.spool.add(upload);
    for (const d of dropped) {
      reporting.log(`the report spool ${reporting.spool.dir} is full: dropped the unsent ${d.name}`);
    }
    return true;
  } catch (e) {
    reporting.log(
      `cannot keep the report in ${reporting.spool.dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): ` +
        'sending it without a copy',
    );
    return false;
  }
}

/** The spool cannot be written: one attempt from memory. */
async function sendUnspooled(
  reporting: HostReporting,
  client: ServerClient,
  upload: ReportUpload,
): Promise<void> {
  try {
    const receipt = await sendReport(client, upload);
    reporting.log(`report sent to ${client.where} as host ${receipt.host} (verdict ${receipt.verdict})`);
  } catch (e) {
    const refusal = permanentRefusal(e);
    const why =
      refusal === undefined
        ? (e as Error).message
        : refusal.fix({ server: client.where, tokenFile: reporting.tokenFile, said: serverSaid(e) });
    reporting.log(`the report was not sent and is lost: ${why}`);
  }
}
