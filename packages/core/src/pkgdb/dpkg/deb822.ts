import { PackageDatabaseError } from '../../errors.js';
import { show } from './fields.js';

export interface Deb822Field {
  /**
   * The value: the rest of the field's first line, without surrounding blanks, then `\n` and each
   * continuation line as it is (with its leading blank).
   */
  value: string;
  /** 1-based line of the field name. */
  line: number;
}

export interface Deb822Paragraph {
  /** 1-based line of the paragraph's first field. */
  line: number;
  /** Fields by lower-case name (deb822 field names are case-insensitive). */
  fields: Map<string, Deb822Field>;
}

const FIELD_NAME = /^[!-9;-~]+$/;

function corrupt(message: string, file: string, line: number): PackageDatabaseError {
  return new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line });
}

export interface ParseDeb822Options {
  /**
   * The text is a file dpkg wrote (status, available…): dpkg ends every line with a newline and
   * every paragraph with an empty line, so a text that ends otherwise was cut short and is
   * refused. Without it (apt's Release and Packages files, files people write), the last line
   * and paragraph may end at the end of the text.
   */
  dpkgWritten?: boolean;
}

/**
 * Parses deb822 paragraphs (deb822(5); dpkg's lib/dpkg/parse.c is the reference): `Name: value`
 * lines, continuation lines starting with a space or tab, paragraphs separated by empty lines.
 * Refused as DATABASE_CORRUPT naming `file` and the line: a line that is neither a field nor a
 * continuation, a continuation with no field before it, an invalid field name, a field given
 * twice, and (see `dpkgWritten`) a text that was cut short.
 */
export function parseDeb822(text: string, file: string, options: ParseDeb822Options = {}): Deb822Paragraph[] {
  const strict = options.dpkgWritten === true;
  const paragraphs: Deb822Paragraph[] = [];
  let current: Deb822Paragraph | undefined;
  // The open field: its name, and where its continuation lines (if any) start and end. Its value
  // is sliced out of the text once it is complete, rather than concatenated line by line.
  let open: { field: Deb822Field; from: number; to: number } | undefined;
  const close = (): void => {
    if (open !== undefined && open.to > open.from) open.field.value += text.slice(open.from, open.to);
    open = undefined;
  };
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    lineNo++;
    let end = text.indexOf('\n', pos);
    if (end < 0) {
      if (strict) {
        const where = current ? ` (in the paragraph that starts at line ${current.line})` : '';
        throw corrupt(`file ends in the middle of a line${where}: it was cut short`, file, lineNo);
      }
      end = text.length;
    }
    const start = pos;
    pos = end + 1;
    if (end === start) {
      close();
      current = undefined;
      continue;
    }
    const first = text.charCodeAt(start);
    if (first === 0x20 || first === 0x09) {
      if (open === undefined) throw corrupt('continuation line without a field before it', file, lineNo);
      open.to = end; // the value gets `\n` and this line when the field closes
      continue;
    }
    close();
    const colon = text.indexOf(':', start);
    if (colon < 0 || colon >= end || colon === start) {
      throw corrupt(`line is not a "Field: value" line: ${show(text.slice(start, end))}`, file, lineNo);
    }
    const name = text.slice(start, colon);
    if (!FIELD_NAME.test(name) || name.startsWith('#') || name.startsWith('-')) {
      throw corrupt(`invalid field name ${show(name)}`, file, lineNo);
    }
    if (current === undefined) {
      current = { line: lineNo, fields: new Map() };
      paragraphs.push(current);
    }
    const key = name.toLowerCase();
    if (current.fields.has(key))
      throw corrupt(`field ${show(name)} appears twice in one paragraph`, file, lineNo);
    const field = { value: text.slice(colon + 1, end).trim(), line: lineNo };
    current.fields.set(key, field);
    open = { field, from: end, to: end };
  }
  close();
  if (strict && current !== undefined) {
    throw corrupt(
      `file ends inside the paragraph that starts at line ${current.line} (no empty line after it): it was cut short`,
      file,
      lineNo,
    );
  }
  return paragraphs;
}
