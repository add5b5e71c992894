import { PackageDatabaseError } from '../../errors.js';
import type { Diversion } from '../model.js';
import { isArchName, isPackageName, pathProblem, show } from './fields.js';

function corrupt(message: string, file: string, line: number): PackageDatabaseError {
  return new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line });
}

/** Lines of a file dpkg wrote, each ended by a newline; a last line without one was cut short. */
function dpkgLines(text: string, file: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.pop() !== '')
    throw corrupt('file ends in the middle of a line: it was cut short', file, lines.length + 1);
  return lines;
}

/**
 * dpkg's `diversions` file: three lines per diversion, the path packages ship (`from`), where the
 * diverted file lives (`to`), and the package that made the diversion, or `:` for a local one
 * (dpkg-divert(1); dpkg's src/divertdb.c). A file whose line count is not a multiple of three, a
 * bad path or package name, or a path diverted twice is DATABASE_CORRUPT naming the line.
 */
export function parseDiversions(text: string, file: string): Diversion[] {
  const lines = dpkgLines(text, file);
  const diversions: Diversion[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < lines.length; i += 3) {
    const [from = '', to, by] = lines.slice(i, i + 3);
    const line = i + 1;
    if (to === undefined || by === undefined) {
      const missing = to === undefined ? 'the "to" path and the package' : 'the package';
      throw corrupt(
        `the diversion of ${show(from)} that starts at line ${line} lacks ${missing} (line ${lines.length + 1}): the file was cut short`,
        file,
        lines.length + 1,
      );
    }
    for (const [p, n] of [
      [from, line],
      [to, line + 1],
    ] as const) {
      const problem = pathProblem(p);
      if (problem !== undefined) throw corrupt(`diverted path ${show(p)} ${problem}`, file, n);
    }
    if (by !== ':' && !isPackageName(by))
      throw corrupt(`invalid diverting package ${show(by)}`, file, line + 2);
    const first = seen.get(from) ?? seen.get(to);
    if (first !== undefined) {
      throw corrupt(`${show(from)} or ${show(to)} is already in the diversion at line ${first}`, file, line);
    }
    seen.set(from, line);
    seen.set(to, line);
    diversions.push({ from, to, by });
  }
  return diversions;
}

/**
 * dpkg's `arch` file: the architectures dpkg accepts, one per line (dpkg --add-architecture).
 * Since dpkg 1.16.2 the native architecture is listed too; the caller removes it.
 */
export function parseArchFile(text: string, file: string): string[] {
  const archs: string[] = [];
  dpkgLines(text, file).forEach((raw, i) => {
    const arch = raw.trim();
    if (arch === '') return;
    if (!isArchName(arch)) throw corrupt(`invalid architecture ${show(arch)}`, file, i + 1);
    if (!archs.includes(arch)) archs.push(arch);
  });
  return archs;
}
