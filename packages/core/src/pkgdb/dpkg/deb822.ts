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

/**
 * Parses deb822 paragraphs (deb822(5); dpkg's lib/dpkg/parse.c is the reference): `Name: value`
 * lines, continuation lines starting with a space or tab, paragraphs separated by empty lines.
 * dpkg writes its databases with every line ended by a newline and every paragraph by an empty
 * line, so a file that ends otherwise was cut short and is refused (`file` names it in errors).
 * Also refused, naming the line: a line that is neither a field nor a continuation, a
 * continuation with no field before it, an invalid field name, a field given twice.
 */
export function parseDeb822(text: string, file: string): Deb822Paragraph[] {
  const paragraphs: Deb822Paragraph[] = [];
  let current: Deb822Paragraph | undefined;
  let lastField: Deb822Field | undefined;
  let lineNo = 0;
  let pos = 0;
  while (pos < text.length) {
    lineNo++;
    const end = text.indexOf('\n', pos);
    if (end < 0) {
      const where = current ? ` (in the paragraph that starts at line ${current.line})` : '';
      throw corrupt(`file ends in the middle of a line${where}: it was cut short`, file, lineNo);
    }
    const line = text.slice(pos, end);
    pos = end + 1;
    if (line === '') {
      current = undefined;
      lastField = undefined;
      continue;
    }
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) {
      if (lastField === undefined) throw corrupt('continuation line without a field before it', file, lineNo);
      lastField.value += '\n' + line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw corrupt(`line is not a "Field: value" line: ${show(line)}`, file, lineNo);
    const name = line.slice(0, colon);
    if (!FIELD_NAME.test(name) || name.startsWith('#') || name.startsWith('-')) {
      throw corrupt(`invalid field name ${show(name)}`, file, lineNo);
    }
    if (current === undefined) {
      current = { line: lineNo, fields: new Map() };
      paragraphs.push(current);
    }
    const key = name.toLowerCase();
    if (current.fields.has(key)) throw corrupt(`field ${show(name)} appears twice in one paragraph`, file, lineNo);
    lastField = { value: line.slice(colon + 1).trim(), line: lineNo };
    current.fields.set(key, lastField);
  }
  if (current !== undefined) {
    throw corrupt(
      `file ends inside the paragraph that starts at line ${current.line} (no empty line after it): it was cut short`,
      file,
      lineNo,
    );
  }
  return paragraphs;
}
