import { PackageDatabaseError } from '../../errors.js';
import { MAX_PATH_LENGTH, pathProblem, show } from './fields.js';

function corrupt(message: string, file: string, line: number): PackageDatabaseError {
  return new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line });
}

/**
 * A screen run over a whole file before its lines are taken one by one. When it finds none of
 * the characters pathProblem() refuses and no empty, `.` or `..` component (a `/`, or for md5sums
 * the separator before a path, followed by at most two dots and then `/`, a line end or the end),
 * per-line checks reduce to "starts with / and is not too long"; when it does find one, every
 * line is checked with pathProblem() so that the error names the right line. One scan of the text
 * costs a fraction of checking each of ~100,000 lines.
 */
function looksClean(text: string, dots: RegExp): boolean {
  return !text.includes('\0') && !text.includes('\uFFFD') && !dots.test(text);
}
const DOT_COMPONENT_IN_LIST = /\/\.{0,2}(?:\/|\n|$)/;
const DOT_COMPONENT_IN_MD5SUMS = /[/ *]\.{0,2}(?:\/|\n|$)/;

/** dpkg writes every line with its newline: a last line without one means the file was cut short. */
function linesOf(text: string, file: string, lenient: boolean): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  const last = lines.pop();
  if (last !== '') {
    if (!lenient) throw corrupt('file ends in the middle of a line: it was cut short', file, lines.length + 1);
    lines.push(last ?? '');
  }
  return lines;
}

/**
 * `info/<package>.list`: one absolute path per line, files and directories, in the order dpkg
 * unpacked them. dpkg lists the root as `/.` first; it is dropped (every package "owns" `/`).
 * Every path is checked (see pathProblem); a bad one, an empty line, or a last line without its
 * newline is DATABASE_CORRUPT naming the line.
 */
export function parseFileList(text: string, file: string): string[] {
  const lines = linesOf(text, file, false);
  if (looksClean(text.startsWith('/.\n') ? text.slice(3) : text, DOT_COMPONENT_IN_LIST)) {
    const paths: string[] = [];
    let ok = true;
    for (const line of lines) {
      if (line.charCodeAt(0) !== 0x2f || line.length > MAX_PATH_LENGTH) {
        ok = false;
        break;
      }
      if (line !== '/.') paths.push(line);
    }
    if (ok) return paths;
  }
  const paths: string[] = [];
  lines.forEach((line, i) => {
    if (line === '/.') return;
    if (line === '') throw corrupt('empty line in a files list', file, i + 1);
    const problem = pathProblem(line);
    if (problem !== undefined) throw corrupt(`path ${show(line)} ${problem}`, file, i + 1);
    paths.push(line);
  });
  return paths;
}

/** `<32 hex digits><space><space or *><path>`, or undefined. */
function md5sumsLine(line: string): { hex: string; name: string } | undefined {
  return MD5SUMS_LINE.test(line) ? { hex: line.slice(0, 32).toLowerCase(), name: line.slice(34) } : undefined;
}
const MD5SUMS_LINE = /^[0-9a-fA-F]{32} [ *]./;
/** Where some line of a whole file is neither empty nor starts like MD5SUMS_LINE. */
const MD5SUMS_BAD_LINE = /^(?![0-9a-fA-F]{32} [ *][^\n]|$)/m;

/**
 * `info/<package>.md5sums`, as shipped in the package (made by dh_md5sums with md5sum(1)):
 * `<32 hex digits><space><space or *><path without its leading />`. Returns absolute paths and
 * lower-case hex. The package, not dpkg, writes this file, so a missing final newline and empty
 * lines are accepted; a line that does not parse, or names a bad path, is DATABASE_CORRUPT naming
 * the line.
 */
export function parseMd5sums(text: string, file: string): Map<string, string> {
  const sums = new Map<string, string>();
  const lines = linesOf(text, file, true);
  if (!MD5SUMS_BAD_LINE.test(text) && looksClean(text, DOT_COMPONENT_IN_MD5SUMS)) {
    let ok = true;
    for (const line of lines) {
      if (line === '') continue;
      if (line.length > MAX_PATH_LENGTH) {
        ok = false;
        break;
      }
      const name = line.slice(34);
      sums.set(name.charCodeAt(0) === 0x2f ? name : `/${name}`, line.slice(0, 32).toLowerCase());
    }
    if (ok) return sums;
    sums.clear();
  }
  lines.forEach((line, i) => {
    if (line === '') return;
    const parsed = md5sumsLine(line);
    if (parsed === undefined) throw corrupt(`line is not "<md5>  <path>": ${show(line)}`, file, i + 1);
    const path = parsed.name.charCodeAt(0) === 0x2f ? parsed.name : `/${parsed.name}`;
    const problem = pathProblem(path);
    if (problem !== undefined) throw corrupt(`path ${show(parsed.name)} ${problem}`, file, i + 1);
    sums.set(path, parsed.hex);
  });
  return sums;
}
