// Reading audit records for people: filters for `nucleus audit tail` and a
// one-line human rendering. Not responsible for verification (verify.ts).

import { isRefusal } from "./events.js";
import type { AuditRecord } from "./record.js";

export interface TailFilter {
  readonly server?: string;
  /** An exact type (`tool.call`) or a family (`server` matches server.*). */
  readonly type?: string;
  readonly refused?: boolean;
}

export function matches(r: AuditRecord, f: TailFilter): boolean {
  if (f.server !== undefined && r.fields.server !== f.server) return false;
  if (f.type !== undefined && r.type !== f.type && !r.type.startsWith(`${f.type}.`)) return false;
  if (f.refused && !isRefusal(r.type, r.fields)) return false;
  return true;
}

/** `2026-11-25T15:54:02.123Z  #12  tool.call  server=fs tool=read_file outcome=ok durationMs=3` */
export function formatRecord(r: AuditRecord): string {
  const fields = Object.entries(r.fields)
    .map(([k, v]) => `${k}=${typeof v === "string" && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${r.time}  #${r.seq}  ${r.type}${fields ? `  ${fields}` : ""}`;
}
