import { PlatformError } from '../errors.js';

/** os-release files are a few hundred bytes; anything near this is not one. */
export const OS_RELEASE_MAX_BYTES = 64 * 1024;

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

type State =
  | 'preKey'
  | 'key'
  | 'preValue'
  | 'value'
  | 'valueEscape'
  | 'singleQuote'
  | 'doubleQuote'
  | 'doubleQuoteEscape'
  | 'comment'
  | 'commentEscape';

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f';
}

/**
 * Parses an os-release(5) file: `KEY=value` lines with shell-like quoting, read the way systemd
 * reads it (parse_env_file() in systemd's src/basic/env-file.c), since that is the reader the
 * format is defined by in practice:
 *  - blank lines, and lines whose first non-blank character is `#` or `;`, are comments;
 *  - a value is a sequence of unquoted, `'single'` and `"double"` quoted pieces, concatenated;
 *    blanks before the value and unescaped trailing blanks of an unquoted value are dropped;
 *  - unquoted, `\x` is `x` and backslash-newline continues the line; in double quotes only `\"`,
 *    `\\`, `` \` `` and `\$` are escapes (other backslashes are kept) and backslash-newline
 *    continues; single quotes have no escapes; quoted values may span lines;
 *  - a line without `=`, or whose key is not a shell variable name, is ignored, as systemd does;
 *    a later assignment of a key replaces an earlier one.
 * Throws PLATFORM_NOT_DETECTED for text larger than OS_RELEASE_MAX_BYTES.
 */
export function parseOsRelease(text: string): Record<string, string> {
  if (text.length > OS_RELEASE_MAX_BYTES) {
    throw new PlatformError(
      'PLATFORM_NOT_DETECTED',
      `os-release is ${text.length} characters, more than the ${OS_RELEASE_MAX_BYTES} allowed`,
    );
  }
  const result = new Map<string, string>();
  let state: State = 'preKey';
  let key = '';
  let value = '';
  // Length of `value` without the unescaped, unquoted blanks at its end.
  let kept = 0;

  const push = (): void => {
    const k = key.trimEnd();
    if (KEY.test(k)) result.set(k, value.slice(0, kept));
    key = '';
    value = '';
    kept = 0;
  };
  const append = (s: string): void => {
    value += s;
    kept = value.length;
  };

  for (const c of text) {
    switch (state) {
      case 'preKey':
        if (c === '#' || c === ';') state = 'comment';
        else if (c !== '\n' && !isSpace(c)) {
          state = 'key';
          key = c;
        }
        break;
      case 'key':
        if (c === '\n') {
          state = 'preKey'; // no `=`: not an assignment, ignored
          key = '';
        } else if (c === '=') state = 'preValue';
        else key += c;
        break;
      case 'preValue':
        if (c === '\n') {
          push();
          state = 'preKey';
        } else if (c === "'") state = 'singleQuote';
        else if (c === '"') state = 'doubleQuote';
        else if (c === '\\') state = 'valueEscape';
        else if (!isSpace(c)) {
          append(c);
          state = 'value';
        }
        break;
      case 'value':
        if (c === '\n') {
          push();
          state = 'preKey';
        } else if (c === '\\') state = 'valueEscape';
        else if (isSpace(c)) value += c;
        else append(c);
        break;
      case 'valueEscape':
        state = 'value';
        if (c !== '\n') append(c);
        break;
      case 'singleQuote':
        if (c === "'") state = 'preValue';
        else append(c);
        break;
      case 'doubleQuote':
        if (c === '"') state = 'preValue';
        else if (c === '\\') state = 'doubleQuoteEscape';
        else append(c);
        break;
      case 'doubleQuoteEscape':
        state = 'doubleQuote';
        if (c === '"' || c === '\\' || c === '`' || c === '$') append(c);
        else if (c !== '\n') append('\\' + c);
        break;
      case 'comment':
        if (c === '\\') state = 'commentEscape';
        else if (c === '\n') state = 'preKey';
        break;
      case 'commentEscape':
        state = 'comment';
        break;
    }
  }
  if (state !== 'preKey' && state !== 'key' && state !== 'comment' && state !== 'commentEscape') push();
  return Object.fromEntries(result);
}
