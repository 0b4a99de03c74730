// Per-server tool allow/deny lists with `*` and `?` globs. Deny wins; an empty
// allow list allows every tool that is not denied. Pure.

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export function matchesGlob(name: string, glob: string): boolean {
  return globToRegExp(glob).test(name);
}

export function toolVisible(name: string, rules: { readonly allow: readonly string[]; readonly deny: readonly string[] }): boolean {
  if (rules.deny.some((g) => matchesGlob(name, g))) return false;
  if (rules.allow.length === 0) return true;
  return rules.allow.some((g) => matchesGlob(name, g));
}
