// The spec of a figure, checked against its schema before the figure is mounted.
//
// The schema is written once, in code/optbook/figures/spec.schema.json (Python
// validates every spec the notebooks emit against the same file, with
// jsonschema).  This is the small subset of JSON Schema that file uses: type,
// const, enum, required, properties, additionalProperties, items, minItems,
// maxItems, minimum, exclusiveMinimum, anyOf, allOf and local $ref.

import SCHEMA from "../../code/optbook/figures/spec.schema.json" with { type: "json" };

export { SCHEMA };
export const KIND_NAMES = SCHEMA.properties.kind.enum;

const TYPES = {
  object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
  array: Array.isArray,
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number" && Number.isFinite(v),
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
};

function resolve(ref) {
  if (!ref.startsWith("#/")) throw new Error(`optbook figures: unsupported $ref ${ref}`);
  return ref.slice(2).split("/").reduce((node, key) => node[key], SCHEMA);
}

/** Every place where `value` breaks `schema`, as "path: message" strings. */
export function errors(value, schema, path = "") {
  const where = path || "(top level)";
  if (schema.$ref) return errors(value, resolve(schema.$ref), path);
  const out = [];
  if (schema.type) {
    const types = [].concat(schema.type);
    if (!types.some((t) => TYPES[t](value))) return [`${where}: expected ${types.join(" or ")}, got ${JSON.stringify(value)}`];
  }
  if ("const" in schema && value !== schema.const) out.push(`${where}: expected ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) out.push(`${where}: ${JSON.stringify(value)} is not one of ${schema.enum.join(", ")}`);
  if (typeof value === "number") {
    if ("minimum" in schema && value < schema.minimum) out.push(`${where}: ${value} < ${schema.minimum}`);
    if ("exclusiveMinimum" in schema && value <= schema.exclusiveMinimum) out.push(`${where}: ${value} <= ${schema.exclusiveMinimum}`);
  }
  if (Array.isArray(value)) {
    if ("minItems" in schema && value.length < schema.minItems) out.push(`${where}: fewer than ${schema.minItems} items`);
    if ("maxItems" in schema && value.length > schema.maxItems) out.push(`${where}: more than ${schema.maxItems} items`);
    if (schema.items) value.forEach((v, k) => out.push(...errors(v, schema.items, `${path}/${k}`)));
  }
  if (TYPES.object(value)) {
    for (const key of schema.required || []) if (!(key in value)) out.push(`${where}: missing required key ${JSON.stringify(key)}`);
    const props = schema.properties || {};
    for (const [key, v] of Object.entries(value)) {
      if (key in props) out.push(...errors(v, props[key], `${path}/${key}`));
      else if (schema.additionalProperties === false) out.push(`${where}: unexpected key ${JSON.stringify(key)}`);
      else if (TYPES.object(schema.additionalProperties)) out.push(...errors(v, schema.additionalProperties, `${path}/${key}`));
    }
  }
  if (schema.allOf) for (const s of schema.allOf) out.push(...errors(value, s, path));
  if (schema.anyOf && !schema.anyOf.some((s) => errors(value, s, path).length === 0)) {
    out.push(`${where}: matches none of the allowed forms`);
  }
  return out;
}

/** Throw an Error naming the first place where `spec` breaks its kind's schema. */
export function checkSpec(spec) {
  const kind = spec && spec.kind;
  if (!KIND_NAMES.includes(kind)) {
    throw new Error(`optbook figures: unknown kind ${JSON.stringify(kind)} (one of ${KIND_NAMES.join(", ")})`);
  }
  const found = errors(spec, SCHEMA.$defs[kind]);
  if (found.length) throw new Error(`optbook figures: invalid ${kind} spec at ${found[0]}`);
  return spec;
}
