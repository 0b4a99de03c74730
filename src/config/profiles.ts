// Built-in and user profiles (`vm_profile`): each gives defaults, and a ceiling
// (how much filesystem and network access a server under it may be granted at
// most), plus the merge of profile layers with a server's own keys.
// Not responsible for checking paths or hosts themselves (resolve.ts).

import type { HostRule } from "./spec.js";
import type { PathSegment, Problems } from "./config-error.js";
import type { PolicyRaw } from "./schema.js";

/** How much a profile lets a server have: none < read-only < read-write paths; none < allowlist network. */
export type PathCeiling = "none" | "readonly" | "readwrite";
export type NetworkCeiling = "none" | "allowlist";

export interface BuiltinProfile {
  readonly description: string;
  readonly paths: PathCeiling;
  readonly network: NetworkCeiling;
  /** Every allowed path is writable unless `writable_paths` names a subset. */
  readonly allWritable: boolean;
  /** Every allowed host must name its port (database-client: 443/80 is never a database). */
  readonly portsRequired: boolean;
  readonly defaults: PolicyRaw;
}

export const BUILTIN_PROFILES: Readonly<Record<string, BuiltinProfile>> = Object.freeze({
  "filesystem-readonly": {
    description: "allowed paths read-only, no network",
    paths: "readonly",
    network: "none",
    allWritable: false,
    portsRequired: false,
    defaults: { network: "none" },
  },
  "filesystem-readwrite": {
    description: "allowed paths writable, no network",
    paths: "readwrite",
    network: "none",
    allWritable: true,
    portsRequired: false,
    defaults: { network: "none" },
  },
  "network-only": {
    description: "no paths, network limited to allowed_hosts",
    paths: "none",
    network: "allowlist",
    allWritable: false,
    portsRequired: false,
    defaults: { network: "allowlist" },
  },
  "database-client": {
    description: "no paths, network limited to allowed_hosts, each with an explicit port",
    paths: "none",
    network: "allowlist",
    allWritable: false,
    portsRequired: true,
    defaults: { network: "allowlist" },
  },
  locked: {
    description: "no paths, no network",
    paths: "none",
    network: "none",
    allWritable: false,
    portsRequired: false,
    defaults: { network: "none" },
  },
});

/**
 * The built-in profile called `name`, or undefined. Own keys only: "toString",
 * "constructor" and the like are not profiles.
 */
export function builtinProfile(name: string): BuiltinProfile | undefined {
  return Object.hasOwn(BUILTIN_PROFILES, name) ? BUILTIN_PROFILES[name] : undefined;
}

/** A policy layer whose paths are real paths and whose hosts are parsed (invalid entries already reported). */
export interface Layer {
  /** TOML path of the section, e.g. ["profiles", "mine"]. */
  readonly source: readonly PathSegment[];
  readonly policy: Omit<PolicyRaw, "allowed_hosts">;
  readonly hosts: readonly HostRule[] | undefined;
}

/** A profile resolved through its `extends` chain. */
export interface ResolvedProfile {
  readonly name: string;
  /** Names from the profile itself down to its root, e.g. ["mine", "network-only"]. */
  readonly chain: readonly string[];
  readonly ceiling: { readonly paths: PathCeiling; readonly network: NetworkCeiling };
  readonly allWritable: boolean;
  readonly portsRequired: boolean;
  /** Base first. */
  readonly layers: readonly Layer[];
}

const NO_CEILING = { paths: "readwrite", network: "allowlist" } as const;

/**
 * Resolves `name` through `extends`. `userLayers` holds the validated layer of each
 * user profile and `userExtends` its `extends` value. Returns null (and reports) on
 * an unknown name or a cycle.
 */
export function resolveProfile(
  name: string,
  userLayers: ReadonlyMap<string, Layer>,
  userExtends: ReadonlyMap<string, string | undefined>,
  problems: Problems,
  at: PathSegment[],
): ResolvedProfile | null {
  const chain: string[] = [];
  const layers: Layer[] = [];
  let current: string | undefined = name;
  let where = at;
  while (current !== undefined) {
    if (chain.includes(current)) {
      problems.add(where, `profile "${name}" extends itself through ${[...chain, current].join(" → ")}`);
      return null;
    }
    chain.push(current);
    const builtin = builtinProfile(current);
    if (builtin) {
      layers.unshift({ source: ["builtin", current], policy: builtin.defaults, hosts: undefined });
      return Object.freeze({
        name,
        chain,
        ceiling: { paths: builtin.paths, network: builtin.network },
        allWritable: builtin.allWritable,
        portsRequired: builtin.portsRequired,
        layers,
      });
    }
    const layer = userLayers.get(current);
    if (!layer && !userExtends.has(current)) {
      problems.add(where, `unknown profile "${current}"; known profiles: ${knownProfiles(userExtends).join(", ")}`);
      return null;
    }
    if (layer) layers.unshift(layer);
    where = ["profiles", current, "extends"];
    current = userExtends.get(current);
  }
  return Object.freeze({ name, chain, ceiling: NO_CEILING, allWritable: false, portsRequired: false, layers });
}

export function knownProfiles(userExtends: ReadonlyMap<string, unknown>): string[] {
  return [...new Set([...Object.keys(BUILTIN_PROFILES), ...[...userExtends.keys()].sort()])];
}

/** Reports every key of `layer` that goes above the profile's ceiling. */
export function checkCeiling(layer: Layer, profile: ResolvedProfile, problems: Problems): void {
  const p = layer.policy;
  const at = (key: string) => [...layer.source, key];
  const via = `profile "${profile.name}"${profile.chain.length > 1 ? ` (via ${profile.chain.slice(1).join(" → ")})` : ""}`;
  if (profile.ceiling.paths === "none") {
    for (const key of ["allowed_paths", "writable_paths"] as const) {
      if ((p[key]?.length ?? 0) > 0) {
        problems.add(at(key), `${via} grants no paths; remove ${key} or choose a filesystem-* profile`);
      }
    }
  } else if (profile.ceiling.paths === "readonly" && (p.writable_paths?.length ?? 0) > 0) {
    problems.add(at("writable_paths"), `${via} grants read-only paths only; use vm_profile = "filesystem-readwrite" to allow writes`);
  }
  if (profile.ceiling.network === "none") {
    if (p.network === "allowlist") problems.add(at("network"), `${via} allows no network; choose network-only or database-client to reach hosts`);
    if ((layer.hosts?.length ?? 0) > 0) problems.add(at("allowed_hosts"), `${via} allows no network; remove allowed_hosts or choose network-only or database-client`);
  }
  if (profile.portsRequired) {
    layer.hosts?.forEach((h, i) => {
      if (!h.portExplicit) problems.add([...at("allowed_hosts"), i], `${via} needs an explicit port on every host, e.g. "${h.raw}:5432"`);
    });
  }
}

export interface MergedPolicy extends Omit<PolicyRaw, "allowed_hosts" | "tools" | "timeouts"> {
  allowed_hosts: HostRule[];
  tools: { allow: string[]; deny: string[] };
  timeouts: { startup_ms?: number; request_ms?: number; shutdown_grace_ms?: number };
  /** Keys some layer set, for limits.explicit. */
  set: Set<string>;
  /** The last layer that set `network`, for messages. */
  networkSource: readonly PathSegment[] | null;
}

/**
 * Layers, base first, merged: scalars — the last layer that sets one wins;
 * path and host lists — concatenated; tools.allow — the last layer that sets it
 * wins; tools.deny — the union; timeouts — per key, the last wins.
 */
export function mergeLayers(layers: readonly Layer[]): MergedPolicy {
  const out: MergedPolicy = { allowed_hosts: [], tools: { allow: [], deny: [] }, timeouts: {}, set: new Set(), networkSource: null };
  const scalars = ["network", "backend", "memory_mib", "cpus", "pids", "tmp_mib", "lazy", "redact_results"] as const;
  for (const layer of layers) {
    const p = layer.policy;
    const user = layer.source[0] !== "builtin";
    for (const key of scalars) {
      if (p[key] === undefined) continue;
      (out as unknown as Record<string, unknown>)[key] = p[key];
      if (user) out.set.add(key);
      if (key === "network") out.networkSource = layer.source;
    }
    if (p.allowed_paths) out.allowed_paths = unique([...(out.allowed_paths ?? []), ...p.allowed_paths]);
    if (p.writable_paths) out.writable_paths = unique([...(out.writable_paths ?? []), ...p.writable_paths]);
    if (layer.hosts) out.allowed_hosts.push(...layer.hosts);
    if (p.tools?.allow) out.tools.allow = [...p.tools.allow];
    if (p.tools?.deny) out.tools.deny = unique([...out.tools.deny, ...p.tools.deny]);
    if (p.timeouts) out.timeouts = { ...out.timeouts, ...p.timeouts };
  }
  const seen = new Set<string>();
  out.allowed_hosts = out.allowed_hosts.filter((h) => {
    const key = `${h.kind} ${h.host}/${h.prefixLength ?? ""} ${h.ports.join(",")}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return out;
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
