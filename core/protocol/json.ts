import type { Schema } from '../schema.ts';

/** The schema as served on GET /v1/schema (plain JSON, it has no 64-bit values). */
export function schemaToJson(schema: Schema): Schema {
  return { version: schema.version, tables: schema.tables.map((t) => ({ name: t.name, columns: [...t.columns] })) };
}
