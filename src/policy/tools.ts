// Tool visibility by glob allow/deny lists (`*` any run of characters, `?` one
// character; nothing else is special). Pure decision; not responsible for
// auditing refused calls or for namespacing tool names (src/gateway/).

export interface ToolFilter {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** Deny wins over allow; an empty allow list admits every tool that is not denied. */
export function toolVisible(name: string, filter: ToolFilter): boolean {
  if (filter.deny.some((p) => globMatch(p, name))) return false;
  if (filter.allow.length === 0) return true;
  return filter.allow.some((p) => globMatch(p, name));
}

/** Whole-string glob match with `*` and `?`; every other character is literal. */
export function globMatch(pattern: string, text: string): boolean {
  // Iterative matcher with single-star backtracking: linear in practice, no regex built from user text.
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  const pc = Array.from(pattern);
  const tc = Array.from(text);
  while (t < tc.length) {
    if (p < pc.length && (pc[p] === "?" || (pc[p] !== "*" && pc[p] === tc[t]))) {
      p++;
      t++;
    } else if (p < pc.length && pc[p] === "*") {
      starP = p++;
      starT = t;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pc.length && pc[p] === "*") p++;
  return p === pc.length;
}

/** A problem with a pattern as written, or null. Patterns are non-empty and hold no whitespace. */
export function toolPatternProblem(pattern: string): string | null {
  if (pattern.length === 0) return "a tool pattern must not be empty";
  if (/\s/.test(pattern)) return `tool pattern "${pattern}" contains whitespace`;
  if (pattern.length > 128) return `tool pattern "${pattern.slice(0, 20)}…" is longer than 128 characters`;
  return null;
}
