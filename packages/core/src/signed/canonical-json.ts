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
