// Host paths written in the config: `~` and config-relative (`./`, `../`)
// expansion, existence, symlink refusal and realpath. Not responsible for
// deciding which paths a server gets (resolve.ts, profiles.ts).

import { lstatSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import type { PathSegment, Problems } from "./config-error.js";

/** Absolute form of a config path, or null when it is an ambiguous relative path. */
export function expandPath(raw: string, configDir: string): string | null {
  if (raw === "~" || raw.startsWith("~/")) return resolve(homedir(), raw.slice(2));
  if (raw === "." || raw === ".." || raw.startsWith("./") || raw.startsWith("../")) return resolve(configDir, raw);
  if (isAbsolute(raw)) return resolve(raw);
  return null;
}

export const RELATIVE_HINT = 'write an absolute path, "~/…", or "./…" for a path relative to the config file';

// SECURITY: granting one of these would expose the whole host or its kernel interfaces.
const NEVER_GRANTED = new Set(["/", "/proc", "/sys", "/dev", "/boot", "/run"]);

export interface ExistingPathOptions {
  readonly kind: "directory" | "file" | "any";
  /** Refuse "/", /proc and the like (for grants, not for code dirs). */
  readonly grant: boolean;
}

/**
 * Checks that `raw` names an existing path by its real name (no symlink on the
 * way) and returns it; reports a problem at `at` and returns null otherwise.
 */
export function existingRealPath(raw: string, configDir: string, at: PathSegment[], problems: Problems, opts: ExistingPathOptions): string | null {
  const abs = expandPath(raw, configDir);
  if (abs === null) {
    problems.add(at, `"${raw}" is a relative path; ${RELATIVE_HINT}`);
    return null;
  }
  let stat;
  try {
    stat = lstatSync(abs);
  } catch {
    problems.add(at, `"${raw}" does not exist${abs !== raw ? ` (looked for ${abs})` : ""}`);
    return null;
  }
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    problems.add(at, `"${raw}" is a symlink that leads nowhere`);
    return null;
  }
  // SECURITY: a symlink can be re-pointed after the config is checked; grants name the real path only.
  if (stat.isSymbolicLink() || real !== abs) {
    problems.add(at, `"${raw}" is or passes through a symlink; use the real path ${real}`);
    return null;
  }
  if (opts.kind === "directory" && !stat.isDirectory()) {
    problems.add(at, `"${raw}" is not a directory`);
    return null;
  }
  if (opts.kind === "file" && !stat.isFile()) {
    problems.add(at, `"${raw}" is not a regular file`);
    return null;
  }
  if (opts.grant && NEVER_GRANTED.has(real)) {
    problems.add(at, `"${raw}" is too broad to grant: it would expose ${real === "/" ? "the whole host filesystem" : "kernel interfaces"}`);
    return null;
  }
  return real;
}
