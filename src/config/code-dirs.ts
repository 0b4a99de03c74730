// The read-only directories a server's own code needs inside the sandbox,
// derived from its command when `code_dir` is not given: for a Node script, its
// package root and the node_modules its dependencies resolve from.
// Not responsible for the runtime itself (node, libc): backends bind those.

import { existsSync, openSync, readSync, closeSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, sep } from "node:path";
import { NucleusError } from "../errors.js";

const NODE_RE = /^(node|nodejs)(\d+(\.\d+)*)?$/;
const SCRIPT_RE = /\.(js|mjs|cjs)$/;
/** Node options that take a separate value, so the value is not the entry script. */
const NODE_VALUE_FLAGS = new Set(["-r", "--require", "--import", "--loader", "--experimental-loader", "--conditions", "-C", "--env-file", "--title"]);

/**
 * Code directories for `argv` (argv[0] absolute or a name on PATH; later entries as
 * they will be passed). Returns [] for a command that is not a Node script.
 * Throws CONFIG_INVALID when the directory would be too broad to expose.
 */
export function defaultCodeDirs(argv: readonly string[], serverName = "SERVER"): string[] {
  const entry = entryScript(argv);
  if (entry === null) return [];
  let real: string;
  try {
    real = realpathSync(entry);
  } catch {
    throw new NucleusError("CONFIG_INVALID", `the script ${entry} does not exist`, {
      hint: "check the path in `command`/`args`; relative paths resolve against the config file's directory",
    });
  }
  const pkgRoot = nearestAncestor(dirname(real), (d) => existsSync(join(d, "package.json"))) ?? dirname(real);
  const dirs = [pkgRoot];
  const parts = pkgRoot.split(sep);
  const nm = parts.lastIndexOf("node_modules");
  if (nm > 0) dirs.push(parts.slice(0, nm + 1).join(sep));
  for (const dir of dirs) {
    const why = tooBroad(dir);
    if (why) {
      throw new NucleusError("CONFIG_INVALID", `the code directory of ${real} would be ${dir}, which is ${why}`, {
        hint: `set servers.${serverName}.code_dir = ["/path/to/the/server/package"] to the directories its code lives in`,
      });
    }
  }
  return [...new Set(dirs)];
}

/** Why `dir` must never be exposed as a code directory, or null. */
export function tooBroad(dir: string): string | null {
  if (["/", "/home", "/root", "/usr", "/etc", "/var", "/tmp", "/proc", "/sys", "/dev"].includes(dir)) return "a system directory";
  let home: string | null = null;
  try {
    home = realpathSync(homedir());
  } catch {
    home = homedir();
  }
  if (dir === home || dir === homedir()) return "your home directory";
  if (dirname(dir) === "/home") return "a home directory";
  return null;
}

function entryScript(argv: readonly string[]): string | null {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) return null;
  if (NODE_RE.test(basename(cmd))) {
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      if (a === "-e" || a === "--eval" || a === "-p" || a === "--print" || a === "-") return null;
      if (NODE_VALUE_FLAGS.has(a)) {
        i++;
        continue;
      }
      if (a.startsWith("-")) continue;
      return a;
    }
    return null;
  }
  // A script run directly: `dist/index.js` with a shebang, or a bin link to one.
  let real: string;
  try {
    real = realpathSync(cmd);
  } catch {
    return null;
  }
  if (SCRIPT_RE.test(real) || isNodeShebang(real)) return cmd;
  return null;
}

function isNodeShebang(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    const fd = openSync(file, "r");
    try {
      const buf = Buffer.alloc(128);
      const n = readSync(fd, buf, 0, buf.length, 0);
      const first = buf.subarray(0, n).toString("utf8").split("\n")[0] ?? "";
      return first.startsWith("#!") && /\bnode(js)?\b/.test(first);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

function nearestAncestor(start: string, test: (dir: string) => boolean): string | null {
  let dir = start;
  for (;;) {
    if (test(dir)) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}
