import { z } from 'zod';

/**
 * Answer fields are parsed by readers (the client, the generator's worker) and described to
 * everyone (the server's OpenAPI document) from one schema. Two kinds of field need the two
 * views to differ, and say so here rather than in a second copy of the schema:
 *  - `sentAlways(schema)`: the server always sends it, a reader does not depend on it (an answer
 *    without it parses); the document lists it as required;
 *  - `unchecked(schema)`: a reader ignores it, so does not check it (whatever is there parses); the
 *    document shows `schema`;
 *  - `documentedAs(reader, shown)`: a reader accepts more than the server sends (a string where
 *    the server sends one of a few values); the document shows what the server sends.
 */
interface FieldDoc {
  /** What the document shows instead of the parser's `unknown`. */
  shows?: z.ZodType;
  /** The document lists the field as required. */
  required: boolean;
}

const FIELD_DOCS = new WeakMap<object, FieldDoc>();

export function sentAlways<T extends z.ZodType>(schema: T): z.ZodOptional<T> {
  const field = schema.optional();
  FIELD_DOCS.set(field, { required: true });
  return field;
}

export function unchecked(schema: z.ZodType, options: { sentAlways: boolean }): z.ZodOptional<z.ZodUnknown> {
  const field = z.unknown().optional();
  FIELD_DOCS.set(field, { shows: schema, required: options.sentAlways });
  return field;
}

export function documentedAs<T extends z.ZodType>(reader: T, shown: z.ZodType): T {
  FIELD_DOCS.set(reader, { shows: shown, required: false });
  return reader;
}

/**
 * The JSON Schema (draft-07, what fastify's ajv validates with) of a protocol schema: a request
 * schema becomes the server's validation, an answer schema the OpenAPI document's description.
 * Integers carry only the bounds the protocol gives them (zod adds the safe-integer range).
 */
export function protocolJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-7',
    override: (ctx) => {
      const node = ctx.jsonSchema as Record<string, unknown>;
      const doc = FIELD_DOCS.get(ctx.zodSchema);
      if (doc?.shows !== undefined) {
        for (const key of Object.keys(node)) delete node[key];
        Object.assign(node, protocolJsonSchema(doc.shows));
      }
      if (node.type === 'integer') {
        if (node.minimum === Number.MIN_SAFE_INTEGER) delete node.minimum;
        if (node.maximum === Number.MAX_SAFE_INTEGER) delete node.maximum;
      }
      if (ctx.zodSchema instanceof z.ZodObject) {
        const shape = ctx.zodSchema.shape as Record<string, z.ZodType>;
        const always = Object.keys(shape).filter((key) => FIELD_DOCS.get(shape[key] as object)?.required);
        if (always.length > 0)
          node.required = [...((node.required as string[] | undefined) ?? []), ...always];
      }
    },
  }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}
