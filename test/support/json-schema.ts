/**
 * A small JSON Schema checker for the subset our schemas use: type (one or
 * several), const, enum, required, properties, additionalProperties: false,
 * items, minimum, pattern. Returns the problems found (empty: valid), each
 * naming the path, so a test failure says what is wrong where.
 */
type Schema = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
  items?: Schema;
  minimum?: number;
  pattern?: string;
};

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

export function validate(schema: Schema, value: unknown, path = "$"): string[] {
  const problems: string[] = [];
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = typeOf(value);
    if (!allowed.includes(actual) && !(actual === "integer" && allowed.includes("number"))) {
      return [`${path}: is ${actual}, expected ${allowed.join(" or ")}`];
    }
  }
  if ("const" in schema && value !== schema.const) problems.push(`${path}: is ${JSON.stringify(value)}, expected ${JSON.stringify(schema.const)}`);
  if (schema.enum !== undefined && !schema.enum.includes(value)) problems.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === "number" && schema.minimum !== undefined && value < schema.minimum) problems.push(`${path}: ${value} < ${schema.minimum}`);
  if (typeof value === "string" && schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) problems.push(`${path}: '${value}' does not match ${schema.pattern}`);
  if (Array.isArray(value) && schema.items !== undefined) value.forEach((item, i) => problems.push(...validate(schema.items!, item, `${path}[${i}]`)));
  if (typeOf(value) === "object") {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) problems.push(`${path}: missing ${key}`);
    for (const [key, item] of Object.entries(object)) {
      const property = schema.properties?.[key];
      if (property !== undefined) problems.push(...validate(property, item, `${path}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${path}: unexpected ${key}`);
    }
  }
  return problems;
}
