import { API_ROUTES, reportReceiptSchema, type ReportReceipt, type ReportUpload } from '@sysattest/core';
import { ServerError, type ServerClient } from '../transport/index.js';
import { SpoolError, type ReportSpool, type SpooledReport } from './report-spool.js';

/**
 * Sends the spooled reports to `POST /v1/reports`, oldest first, each removed from the spool once
 * the server answers 201 (stored) or 200 (stored before: a resend), so a report is never lost and
 * never stored twice. A failure the next run may not see (the server down, slow, overloaded, an
 * older server without the route) stops the sending: everything stays spooled for the next run. A
 * refusal that will never turn into a success (REFUSALS) moves that report aside, with what to fix.
 */

/** Largest receipt read (it is a few hundred bytes). */
const MAX_RECEIPT_BYTES = 64 * 1024;

export interface RefusalContext {
  server: string;
  tokenFile: string;
  /** What the server said, when it said something. */
  said: string;
}

/**
 * HTTP statuses that sending the same report again can never change, and what the operator must
 * fix. `stopsAll`: every other report would get the same answer (the token), so the run stops.
 */
export const REFUSALS: Readonly<Record<number, { fix: (c: RefusalContext) => string; stopsAll: boolean }>> = {
  400: {
    fix: (c) =>
      `the server ${c.server} refused the report as invalid${c.said}: is it running another version of sysattest than this client?`,
    stopsAll: false,
  },
  401: {
    fix: (c) =>
      `the server ${c.server} does not know the token in ${c.tokenFile} (unknown or revoked)${c.said}: ` +
      'put a valid reporter token there (sysattest-server token create --role reporter --host NAME --name NAME)',
    stopsAll: true,
  },
  403: {
    fix: (c) =>
      `the server ${c.server} does not let the token in ${c.tokenFile} send reports${c.said}: ` +
      'it needs a reporter token bound to this host (sysattest-server token create --role reporter --host NAME --name NAME)',
    stopsAll: true,
  },
  413: {
    fix: (c) =>
      `the report is larger than the server ${c.server} accepts${c.said}: raise the server's reports.maxBodyBytes`,
    stopsAll: false,
  },
  415: {
    fix: (c) => `the server ${c.server} refused the report's encoding${c.said}`,
    stopsAll: false,
  },
  422: {
    fix: (c) => `the server ${c.server} refused the report${c.said}`,
    stopsAll: false,
  },
};

export interface DeliveryOptions {
  /** The server, with the host's reporter token. */
  client: ServerClient;
  /** Where the token came from, for what-to-fix messages. */
  tokenFile: string;
  /** No new request starts after this time (ms since the epoch). */
  deadline: number;
  /** One line for the operator (stderr). */
  log: (line: string) => void;
}

export interface DeliveryResult {
  /** The server's receipts, oldest report first. */
  sent: ReportReceipt[];
  /** Moved aside to `rejected/`. */
  rejected: number;
  /** Still spooled. */
  waiting: number;
}

/** Sends one report; its receipt, or a ServerError (SERVER_BAD_RESPONSE: a receipt for another report). */
export async function sendReport(client: ServerClient, upload: ReportUpload): Promise<ReportReceipt> {
  const answer = await client.exchange('POST', API_ROUTES.reports, reportReceiptSchema, {
    body: upload,
    maxBytes: MAX_RECEIPT_BYTES,
  });
  if (answer === undefined || (answer.status !== 200 && answer.status !== 201)) {
    throw new ServerError(
      'SERVER_BAD_RESPONSE',
      `the server ${client.where} answered a report with HTTP ${answer?.status ?? 404} (201 or 200 expected)`,
    );
  }
  if (answer.body.reportId !== upload.reportId) {
    throw new ServerError(
      'SERVER_BAD_RESPONSE',
      `the server ${client.where} answered report ${upload.reportId} with a receipt for ${answer.body.reportId}`,
    );
  }
  return answer.body;
}

/** The refusal a ServerError is, when sending again can never succeed. */
export function permanentRefusal(e: unknown): (typeof REFUSALS)[number] | undefined {
  return e instanceof ServerError && e.status !== undefined ? REFUSALS[e.status] : undefined;
}

export async function deliverSpool(spool: ReportSpool, options: DeliveryOptions): Promise<DeliveryResult> {
  const { client, log } = options;
  const result: DeliveryResult = { sent: [], rejected: 0, waiting: 0 };
  const entries = await spool.pending();
  for (const [i, entry] of entries.entries()) {
    if (Date.now() > options.deadline) {
      result.waiting = entries.length - i;
      log(`sending reports stopped at its time limit; ${waitingLine(spool, result.waiting)}`);
      return result;
    }
    let upload: ReportUpload | undefined;
    try {
      upload = await spool.read(entry);
      if (upload === undefined) continue; // another run sent it meanwhile
    } catch (e) {
      if (!(e instanceof SpoolError)) throw e;
      await moveAside(spool, entry, `${e.message}: not sent`, log);
      result.rejected++;
      continue;
    }
    try {
      result.sent.push(await sendReport(client, upload));
      await spool.remove(entry);
    } catch (e) {
      const refusal = permanentRefusal(e);
      if (refusal === undefined) {
        result.waiting = entries.length - i;
        log(`the report was not sent: ${(e as Error).message}; ${waitingLine(spool, result.waiting)}`);
        return result;
      }
      result.rejected++;
      const fix = refusal.fix({ server: client.where, tokenFile: options.tokenFile, said: serverSaid(e) });
      if (!refusal.stopsAll) {
        await moveAside(spool, entry, fix, log);
        continue;
      }
      result.waiting = entries.length - i - 1;
      const more = result.waiting > 0 ? `; ${waitingLine(spool, result.waiting)}` : '';
      await moveAside(spool, entry, fix, log, more);
      return result;
    }
  }
  return result;
}

/** What the server said with its refusal, for a message: ` (HTTP 401: unknown token)`. */
export function serverSaid(e: unknown): string {
  const error = e as ServerError;
  return error.serverMessage === undefined ? '' : ` (HTTP ${error.status}: ${error.serverMessage})`;
}

function waitingLine(spool: ReportSpool, waiting: number): string {
  return `${waiting} ${waiting === 1 ? 'report waits' : 'reports wait'} in ${spool.dir} and ${waiting === 1 ? 'is' : 'are'} sent first by the next run`;
}

async function moveAside(
  spool: ReportSpool,
  entry: SpooledReport,
  why: string,
  log: (line: string) => void,
  more = '',
): Promise<void> {
  const { file, dropped } = await spool.reject(entry);
  log(`${why}; the report is kept in ${file} (move it back to ${spool.dir} to send it again)${more}`);
  for (const d of dropped) log(`dropped ${d.file}: more than the rejected reports kept`);
}
