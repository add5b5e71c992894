/**
 * Canonical JSON: the one byte sequence a value serialises to, so that the same manifest always
 * has the same bytes (and the same signature input), whoever made it.
 *
 * Rules (a subset of RFC 8785 sufficient for our data, which has no floating-point numbers):
 *  - object keys sorted by UTF-16 code units (RFC 8785 §3.2.3), no duplicates;
 *  - no insignificant whitespace: one line, ending with "\n" (read it with `jq`);
 *  - strings escaped as JSON.stringify does (which matches RFC 8785 §3.2.2.2);
 *  - numbers: safe integers only; anything else is refused.
 */
export function canonicalJson(value: unknown): string {
  return serialise(value, 0) + '\n';
}

const MAX_DEPTH = 32;

function serialise(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError('canonical JSON: nesting too deep');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON: ${value} is not a safe integer`);
      return String(value);
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((v) => serialise(v, depth + 1)).join(',') + ']';
      const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
      keys.sort(); // Array.prototype.sort without comparator orders by UTF-16 code units
      return (
        '{' +
        keys
          .map((k) => JSON.stringify(k) + ':' + serialise((value as Record<string, unknown>)[k], depth + 1))
          .join(',') +
        '}'
      );
    }
    default:
      throw new TypeError(`canonical JSON: cannot serialise a ${typeof value}`);
  }
}

/**
 * Whether `text` is exactly canonicalJson(value), decided without building that string: the value
 * is walked and each small piece compared in place. Checking a 15 MB manifest this way allocates
 * next to nothing, where building its canonical string for a comparison costs ~60 MB at peak.
 * Throws the TypeErrors canonicalJson() would throw.
 */
export function matchesCanonicalJson(value: unknown, text: string): boolean {
  const cursor = { pos: 0 };
  return (
    matchValue(value, text, cursor, 0) && cursor.pos === text.length - 1 && text.charCodeAt(cursor.pos) === 10
  );
}

function take(text: string, cursor: { pos: number }, piece: string): boolean {
  if (!text.startsWith(piece, cursor.pos)) return false;
  cursor.pos += piece.length;
  return true;
}

function matchValue(value: unknown, text: string, cursor: { pos: number }, depth: number): boolean {
  if (depth > MAX_DEPTH) throw new TypeError('canonical JSON: nesting too deep');
  if (value === null) return take(text, cursor, 'null');
  switch (typeof value) {
    case 'boolean':
      return take(text, cursor, value ? 'true' : 'false');
    case 'string':
      return take(text, cursor, JSON.stringify(value));
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON: ${value} is not a safe integer`);
      return take(text, cursor, String(value));
    case 'object': {
      if (Array.isArray(value)) {
        if (!take(text, cursor, '[')) return false;
        for (let i = 0; i < value.length; i++) {
          if (i > 0 && !take(text, cursor, ',')) return false;
          if (!matchValue(value[i], text, cursor, depth + 1)) return false;
        }
        return take(text, cursor, ']');
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).filter((k) => record[k] !== undefined);
      keys.sort();
      if (!take(text, cursor, '{')) return false;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        if (i > 0 && !take(text, cursor, ',')) return false;
        if (!take(text, cursor, JSON.stringify(k)) || !take(text, cursor, ':')) return false;
        if (!matchValue(record[k], text, cursor, depth + 1)) return false;
      }
      return take(text, cursor, '}');
    }
    default:
      throw new TypeError(`canonical JSON: cannot serialise a ${typeof value}`);
  }
}
