// Finds the config file: -c/--config, else ./nucleus.toml, else
// $XDG_CONFIG_HOME/nucleus/nucleus.toml (default ~/.config/nucleus/nucleus.toml).
// Not responsible for reading or validating it (load.ts).

import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { NucleusError } from "../errors.js";

export interface DiscoverOptions {
  /** The -c/--config value, if given. */
  readonly flag?: string | undefined;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** The user-level config path (whether or not it exists). */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), ".config");
  return join(base, "nucleus", "nucleus.toml");
}

export function discoverConfig(opts: DiscoverOptions = {}): string {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  if (opts.flag !== undefined) {
    const path = resolve(cwd, opts.flag);
    if (!existsSync(path)) {
      throw new NucleusError("CONFIG_NOT_FOUND", `config file ${path} (from --config) does not exist`, {
        hint: "check the path given to -c/--config",
      });
    }
    return path;
  }
  const local = resolve(cwd, "nucleus.toml");
  if (existsSync(local)) return local;
  const user = userConfigPath(env);
  if (existsSync(user)) return user;
  throw new NucleusError("CONFIG_NOT_FOUND", `no config file found (looked for ${local} and ${user})`, {
    hint: `create one of them (examples/nucleus.toml is a working start), or pass -c FILE`,
  });
}
