import { PackageDatabaseError } from '../../errors.js';
import { MAX_PATH_LENGTH, pathProblem, show } from './fields.js';

function corrupt(message: string, file: string, line: number): PackageDatabaseError {
  return new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line });
}

/**
 * A screen run over a whole files list before its lines are taken one by one. When it finds none
 * of the characters pathProblem() refuses and no empty, `.` or `..` component (a `/` followed by
 * at most two dots and then `/`, a line end or the end),
 * per-line checks reduce to "starts with / and is not too long"; when it does find one, every
 * line is checked with pathProblem() so that the error names the right line. One scan of the text
 * costs a fraction of checking each of ~100,000 lines.
 */
function looksClean(text: string): boolean {
  return !text.includes('\0') && !text.includes('\uFFFD') && !DOT_COMPONENT.test(text);
}
const DOT_COMPONENT = /\/\.{0,2}(?:\/|\n|$)/;

/** dpkg writes every line with its newline: a last line without one means the file was cut short. */
function linesOf(text: string, file: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  const last = lines.pop();
  if (last !== '')
    throw corrupt('file ends in the middle of a line: it was cut short', file, lines.length + 1);
  return lines;
}

/**
 * `info/<package>.list`: one absolute path per line, files and directories, in the order dpkg
 * unpacked them. dpkg lists the root as `/.` first; it is dropped (every package "owns" `/`).
 * Every path is checked (see pathProblem); a bad one, an empty line, or a last line without its
 * newline is DATABASE_CORRUPT naming the line.
 */
export function parseFileList(text: string, file: string): string[] {
  const lines = linesOf(text, file);
  const root = lines[0] === '/.';
  // Past the screen, `/.` can only be the first line.
  if (looksClean(root ? text.slice(3) : text) && lines.every(isPlainPath)) {
    if (root) lines.shift();
    return lines;
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

/** Absolute, and short enough not to need its length counted in bytes (long paths go the slow way). */
function isPlainPath(line: string): boolean {
  return line.charCodeAt(0) === 0x2f && line.length * 3 <= MAX_PATH_LENGTH;
}

/** What is wrong with a line of an md5sums file, or undefined when it is well formed. */
function md5sumsLineProblem(line: string): string | undefined {
  if (!/^[0-9a-fA-F]{32} [ *]./.test(line)) return `line is not "<md5>  <path>": ${show(line)}`;
  const name = line.slice(34);
  if (name === '/') return 'line names the root directory';
  const problem = pathProblem(name.charCodeAt(0) === 0x2f ? name : `/${name}`);
  return problem === undefined ? undefined : `path ${show(name)} ${problem}`;
}

/** The lines of an md5sums file, in its order. */
export interface Md5sums {
  /** Each path WITHOUT its leading `/`, as the file names it (a leading `/`, if any, is dropped). */
  names: string[];
  /** The md5 of names[i], lower-case hex. */
  hexes: string[];
}

/**
 * `info/<package>.md5sums`, as shipped in the package (made by dh_md5sums with md5sum(1)):
 * `<32 hex digits><space><space or *><path without its leading />`. The package, not dpkg,
 * writes this file, so a missing final newline and empty lines are accepted; a line that does not
 * parse, or names a bad path (see pathProblem), is DATABASE_CORRUPT naming the line.
 *
 * Lines are checked by scanning their characters in place (md5sumsLineCheck) and sliced out of
 * the text only once known good: splitting ~100,000 lines into strings and running regular
 * expressions over each costs several times more.
 */
export function parseMd5sums(text: string, file: string): Md5sums {
  const names: string[] = [];
  const hexes: string[] = [];
  const n = text.length;
  let lineNo = 0;
  for (let pos = 0; pos < n;) {
    lineNo++;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    if (end > pos) {
      let check = md5sumsLineCheck(text, pos, end);
      if (check === UNSURE) {
        const problem = md5sumsLineProblem(text.slice(pos, end));
        if (problem !== undefined) throw corrupt(problem, file, lineNo);
        check = UPPER_CASE;
      }
      hexes.push(check === UPPER_CASE ? text.slice(pos, pos + 32).toLowerCase() : text.slice(pos, pos + 32));
      names.push(text.slice(text.charCodeAt(pos + 34) === 0x2f ? pos + 35 : pos + 34, end));
    }
    pos = end + 1;
  }
  return { names, hexes };
}

const UNSURE = 0;
const OK = 1;
const UPPER_CASE = 2;

/**
 * The fast check of the line text[pos, end): OK, UPPER_CASE (well formed, with upper-case hex
 * digits), or UNSURE, when md5sumsLineProblem() must decide (and say what is wrong): the line
 * breaks a rule, or its path is long enough that its length must be counted in bytes.
 */
function md5sumsLineCheck(text: string, pos: number, end: number): number {
  if (end - pos < 35 || text.charCodeAt(pos + 32) !== 0x20) return UNSURE;
  const mode = text.charCodeAt(pos + 33);
  if (mode !== 0x20 && mode !== 0x2a) return UNSURE;
  let result = OK;
  for (let i = pos; i < pos + 32; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) continue;
    if (c >= 0x41 && c <= 0x46) result = UPPER_CASE;
    else return UNSURE;
  }
  let start = pos + 34; // the current path component
  if (text.charCodeAt(start) === 0x2f) start++;
  if ((end - start + 1) * 3 > MAX_PATH_LENGTH) return UNSURE;
  for (let i = start; i <= end; i++) {
    const c = i < end ? text.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const len = i - start;
      // an empty, `.` or `..` component
      if (len === 0) return UNSURE;
      if (len <= 2 && text.charCodeAt(start) === 0x2e && (len === 1 || text.charCodeAt(start + 1) === 0x2e)) {
        return UNSURE;
      }
      start = i + 1;
    } else if (c === 0 || c === 0xfffd) return UNSURE;
  }
  return result;
}
