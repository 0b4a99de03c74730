// Where nucleus keeps what it builds and downloads: `$XDG_CACHE_HOME/nucleus`
// (default `~/.cache/nucleus`), holding installed npm packages (npm/), microVM
// images (images/) and Firecracker snapshots. One definition for every store
// and for the config's protected paths. Not responsible for creating it.

import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";

export function nucleusCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const home = env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, ".cache"), "nucleus");
}
