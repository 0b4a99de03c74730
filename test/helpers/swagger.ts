// Test helper: validates a request body against a Swagger 2.0 definition, the
// way Firecracker's API parses it (unknown fields are errors). Covers what the
// Firecracker definitions use: $ref, object/required/properties, enum, types, min/max.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "yaml";

/** ../shared/firecracker/firecracker.yaml from the repo root; NUCLEUS_FIRECRACKER_YAML overrides (a worktree elsewhere). */
export const FIRECRACKER_YAML = process.env.NUCLEUS_FIRECRACKER_YAML ?? resolve(process.cwd(), "../shared/firecracker/firecracker.yaml");
export const firecrackerYamlAbsent = !existsSync(FIRECRACKER_YAML);

type Schema = Record<string, unknown>;
export interface SwaggerDoc {
  readonly paths: Record<string, Record<string, { parameters?: { in: string; schema?: Schema; name: string; type?: string }[] }>>;
  readonly definitions: Record<string, Schema>;
}

export function loadFirecrackerSpec(): SwaggerDoc {
  return parse(readFileSync(FIRECRACKER_YAML, "utf8")) as SwaggerDoc;
}

/** The body schema of `method path` (path may be concrete, e.g. /drives/d0). */
export function bodySchema(doc: SwaggerDoc, method: string, path: string): Schema | null {
  for (const [template, ops] of Object.entries(doc.paths)) {
    const re = new RegExp("^" + template.replace(/\{[^}]+\}/g, "[^/]+") + "$");
    if (!re.test(path)) continue;
    const op = ops[method.toLowerCase()];
    if (!op) return null;
    return op.parameters?.find((p) => p.in === "body")?.schema ?? null;
  }
  return null;
}

export function validate(doc: SwaggerDoc, schema: Schema, value: unknown, at = "body"): string[] {
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.replace("#/definitions/", "");
    const def = doc.definitions[name];
    return def ? validate(doc, def, value, at) : [`${at}: unknown $ref ${schema.$ref}`];
  }
  const errors: string[] = [];
  const type = schema.type as string | undefined;
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (type === "object" || schema.properties) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return [`${at}: expected an object`];
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in value)) errors.push(`${at}.${r}: required`);
    for (const [k, v] of Object.entries(value)) {
      if (!(k in props)) errors.push(`${at}.${k}: unknown field`);
      else errors.push(...validate(doc, props[k]!, v, `${at}.${k}`));
    }
  } else if (type === "integer") {
    if (!Number.isInteger(value)) errors.push(`${at}: expected an integer`);
  } else if (type === "string") {
    if (typeof value !== "string") errors.push(`${at}: expected a string`);
  } else if (type === "boolean") {
    if (typeof value !== "boolean") errors.push(`${at}: expected a boolean`);
  } else if (type === "array") {
    if (!Array.isArray(value)) errors.push(`${at}: expected an array`);
    else value.forEach((v, i) => errors.push(...validate(doc, schema.items as Schema, v, `${at}[${i}]`)));
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errors.push(`${at}: ${value} < minimum ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errors.push(`${at}: ${value} > maximum ${schema.maximum}`);
  }
  return errors;
}
