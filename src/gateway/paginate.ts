// Downstream pagination of aggregated lists with an opaque cursor (an offset).
// Pages are large: many clients never follow nextCursor.

import { wire } from "./wire-error.js";



export const PAGE_SIZE = 500;

export function paginate<T, K extends string>(items: T[], cursor: string | undefined, field: K): { [P in K]: T[] } & { nextCursor?: string } {
  let offset = 0;
  if (cursor !== undefined) {
    const n = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
    if (!n) throw wire.invalidParams("invalid cursor");
    offset = Number(n[1]);
  }
  const page = items.slice(offset, offset + PAGE_SIZE);
  const next = offset + PAGE_SIZE < items.length ? Buffer.from(`o:${offset + PAGE_SIZE}`).toString("base64url") : undefined;
  return { [field]: page, ...(next ? { nextCursor: next } : {}) } as { [P in K]: T[] } & { nextCursor?: string };
}
