// Host files no server may be given through its paths: other servers' secret
// files, the audit log, and (for writable grants) anything whose change would
// make the gateway run code on the host — the config file and its directory,
// secret commands, other servers' code, the gateway's own program.
// Runs after every server is resolved, so reload re-checks it. Not responsible
// for resolving paths (paths.ts) or loading secrets (src/secrets/).

import { realpathSync } from "node:fs";
import { nucleusCacheDir } from "../cache-dir.js";
import { basename, dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { PathSegment, Problems } from "./config-error.js";
import type { NucleusConfig, ServerSpec } from "./spec.js";

/** One host path a server reaches: a code directory (read-only) or a grant. */
interface Reach {
  readonly path: string;
  readonly writable: boolean;
  readonly at: PathSegment[];
  /** "code directory …" / "\"…\" (granted writable)": how the message names it. */
  readonly label: string;
  readonly hint: string;
}

/** A protected host path and whether reading it is refused too (else writing only). */
interface Guarded {
  /** How a reached path `p` meets it: "contains" (p is it or above it), "inside" (p lies in it), or null. */
  readonly meets: (p: string) => "contains" | "inside" | null;
  readonly readToo: boolean;
  /** Servers that may reach it (a secret's holders, a server's own code). */
  readonly exempt: ReadonlySet<string>;
  readonly what: string;
  readonly why: string;
}

export interface ProtectedPathsInput {
  readonly config: Pick<NucleusConfig, "source" | "gateway" | "secrets" | "servers">;
  /** The keys each [servers.NAME] section had as written (to name the TOML path of a grant). */
  readonly present: ReadonlyMap<string, ReadonlySet<string>>;
}

// The gateway's own code (dist/ and node_modules below the package root) and the node binary.
const GATEWAY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Reports every server path that reaches a protected host path. */
export function checkProtectedPaths(input: ProtectedPathsInput, problems: Problems): void {
  const guarded = guardedPaths(input.config);
  for (const server of input.config.servers) {
    for (const reach of reaches(server, input.present.get(server.name) ?? new Set())) {
      const said = new Set<string>();
      for (const g of guarded) {
        if (g.exempt.has(server.name) || (!reach.writable && !g.readToo) || said.has(g.what)) continue;
        const how = g.meets(reach.path);
        if (how) said.add(g.what);
        if (how) problems.add(reach.at, `${reach.label} ${how === "contains" ? "contains" : "lies inside"} ${g.what}: ${g.why}; ${reach.hint}`);
      }
    }
  }
}

function guardedPaths(config: ProtectedPathsInput["config"]): Guarded[] {
  const out: Guarded[] = [];
  const none = new Set<string>();
  const holders = (secret: string) => new Set(config.servers.filter((s) => s.secrets.some((r) => r.name === secret)).map((s) => s.name));
  const httpToken = config.gateway.http?.token ?? null;
  for (const spec of Object.values(config.secrets)) {
    if (spec.from === "file" && spec.path) {
      const what = `the file of secret "${spec.name}"${spec.name === httpToken ? " (the HTTP endpoint's bearer token)" : ""}, ${spec.path}`;
      // SECURITY: a server that holds the secret may see its file (it receives the value anyway), but
      // no server may write it: another holder (or the gateway, for the HTTP token) would read what it wrote.
      out.push({ meets: within(spec.path), readToo: true, exempt: holders(spec.name), what, why: "a server must not see a secret it does not hold" });
      out.push({ meets: within(spec.path), readToo: false, exempt: none, what, why: "a server that can write it could change what the gateway delivers" });
    }
    if (spec.from === "command" && spec.command?.[0]) {
      out.push({ meets: within(spec.command[0]), readToo: false, exempt: none, what: `${spec.command[0]}, the program that reads secret "${spec.name}"`, why: "a server that can replace it makes the gateway run its code on the host" });
    }
  }
  // SECURITY: the config decides what runs on the host (from = "command", insecure_unsandboxed); a writable
  // grant of it or of its directory (where it can be replaced) turns a reload into code execution.
  const configMeets = within(dirname(config.source));
  const fileMeets = within(config.source);
  out.push({ meets: (p) => configMeets(p) ?? fileMeets(p), readToo: false, exempt: none, what: `the config file ${config.source} (or its directory)`, why: "a server that can change the config can make the gateway run any command at the next reload" });
  const audit = config.gateway.auditLog;
  if (audit) {
    // SECURITY: the log, its lock (FILE.lock) and rotated files (FILE.N) all live in its directory.
    const base = basename(audit);
    const isAuditFile = (n: string) => n === base || n === `${base}.lock` || (n.startsWith(`${base}.`) && /^\d+$/.test(n.slice(base.length + 1)));
    const dirMeets = within(dirname(audit));
    const dirs = forms(dirname(audit));
    const meets = (p: string) => dirMeets(p) ?? (dirs.includes(dirname(p)) && isAuditFile(basename(p)) ? "contains" : null);
    out.push({ meets, readToo: true, exempt: none, what: `the audit log ${audit} (its directory, lock and rotated files)`, why: "a server must not read or rewrite the audit trail of every server" });
  }
  for (const server of config.servers) {
    const exempt = new Set([server.name]);
    for (const dir of server.launch.codeDirs) {
      out.push({ meets: overlapping(dir), readToo: false, exempt, what: `the code directory ${dir} of server "${server.name}"`, why: `a server that can change it runs its code as "${server.name}", with its secrets and paths` });
    }
    const program = server.launch.argv[0];
    if (program) {
      out.push({ meets: within(program), readToo: false, exempt, what: `${program}, the program of server "${server.name}"`, why: `a server that can replace it runs its code as "${server.name}"` });
    }
  }
  // (A writable directory elsewhere in a checkout, e.g. examples/, changes nothing that runs.)
  const gatewayParts = [within(GATEWAY_ROOT), ...["dist", "node_modules", "bin", "package.json"].map((d) => overlapping(join(GATEWAY_ROOT, d)))];
  const gatewayMeets = (p: string) => gatewayParts.reduce<ReturnType<Guarded["meets"]>>((found, m) => found ?? m(p), null);
  out.push({ meets: gatewayMeets, readToo: false, exempt: none, what: `the gateway's own code ${GATEWAY_ROOT}`, why: "a server that can change it runs code on the host" });
  out.push({ meets: within(process.execPath), readToo: false, exempt: none, what: `the node binary that runs the gateway, ${process.execPath}`, why: "a server that can replace it runs code on the host" });
  // SECURITY: nucleus's cache holds the installed npm packages (servers' code, installed after this check),
  // the microVM images (every VM's kernel and agent) and Firecracker snapshots.
  const cache = nucleusCacheDir();
  out.push({ meets: overlapping(cache), readToo: false, exempt: none, what: `nucleus's cache ${cache} (npm packages, microVM images)`, why: "a server that can change it runs its code as other servers, or in every VM" });
  return out;
}

/** The paths a server reaches: its code directories (read-only) and its grants, each with the TOML path it comes from. */
function reaches(server: ServerSpec, present: ReadonlySet<string>): Reach[] {
  const at = (...keys: string[]): PathSegment[] => ["servers", server.name, keys.find((k) => present.has(k)) ?? keys[keys.length - 1]!];
  const out: Reach[] = [];
  const explicit = present.has("code_dir");
  for (const dir of server.launch.codeDirs) {
    out.push({
      path: dir,
      writable: false,
      at: at("code_dir", "command"),
      label: `the code directory ${dir}${explicit ? "" : " (the script's own folder or package, mounted read-only)"}`,
      hint: explicit
        ? "name a directory that holds the server's code only"
        : `move the script (or the protected file) into a directory of its own, or set servers.${server.name}.code_dir to the directory of the server's code only`,
    });
  }
  for (const grant of server.paths) {
    out.push({
      path: grant.path,
      writable: grant.writable,
      at: grant.writable ? at("writable_paths", "allowed_paths", "vm_profile") : at("allowed_paths", "writable_paths", "vm_profile"),
      label: `"${grant.path}" (granted ${grant.writable ? "writable" : "read-only"})`,
      hint: grant.writable
        ? "grant a narrower directory, or grant this one read-only (allowed_paths with vm_profile = \"filesystem-readonly\", or writable_paths naming only what must be written)"
        : "grant a narrower directory, or move the protected file out of it",
    });
  }
  return out;
}

/** Absolute forms of a host path: as written and its real path (they differ across a symlink). */
function forms(path: string): string[] {
  const abs = resolve(path);
  return [...new Set([abs, realOrNearest(abs)])];
}

/** realpath of `abs`, or of its nearest existing ancestor with the rest appended. */
function realOrNearest(abs: string): string {
  let rest = "";
  let cur = abs;
  for (;;) {
    try {
      return rest ? join(realpathSync(cur), rest) : realpathSync(cur);
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return abs;
      rest = rest ? join(basename(cur), rest) : basename(cur);
      cur = parent;
    }
  }
}

/** "contains" when the reached path is `target` or one of its ancestors. */
function within(target: string): Guarded["meets"] {
  const fs = forms(target);
  return (p) => (fs.some((f) => contains(p, f)) ? "contains" : null);
}

/** As `within`, and "inside" when the reached path lies below `target`. */
function overlapping(target: string): Guarded["meets"] {
  const fs = forms(target);
  return (p) => (fs.some((f) => contains(p, f)) ? "contains" : fs.some((f) => contains(f, p)) ? "inside" : null);
}

/** True when `inner` is `outer` or lies below it. */
function contains(outer: string, inner: string): boolean {
  if (inner === outer) return true;
  return inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}
