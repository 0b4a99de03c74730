// Small generated files a bubblewrap sandbox receives through fds: a minimal
// /etc/passwd, /etc/group and /etc/hosts, the env-secret file, and the constant
// launcher script that loads it. Pure string rendering; no I/O.

/** Where a sandboxed server's user lives. */
export const SANDBOX_USER = "nucleus";
export const SANDBOX_HOME = "/home/nucleus";
/** Secrets with as = "file" appear here, one file per target. */
export const SECRET_FILE_DIR = "/run/secrets";
/** The private runtime dir: env-secret file, egress socket. */
export const RUN_DIR = "/run/nucleus";
export const ENV_FILE = `${RUN_DIR}/env.sh`;
export const EGRESS_SOCKET = `${RUN_DIR}/egress.sock`;

export function renderPasswd(uid: number, gid: number): string {
  return [
    "root:x:0:0:root:/root:/usr/sbin/nologin",
    `${SANDBOX_USER}:x:${uid}:${gid}:MCP server:${SANDBOX_HOME}:/usr/sbin/nologin`,
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    "",
  ].join("\n");
}

export function renderGroup(gid: number): string {
  return ["root:x:0:", `${SANDBOX_USER}:x:${gid}:`, "nogroup:x:65534:", ""].join("\n");
}

export function renderHosts(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FILE_NAME = /^[A-Za-z0-9_.-]+$/;

/** A secret target the sandbox can receive: env names are shell-safe, file names stay inside SECRET_FILE_DIR. */
export function validSecretTarget(target: string, as: "env" | "file"): boolean {
  return as === "env" ? ENV_NAME.test(target) : FILE_NAME.test(target) && target !== "." && target !== ".." && target.length <= 128;
}

/** `NAME='value'` lines for a POSIX shell; a value may hold any character but NUL. */
export function renderEnvFile(vars: ReadonlyArray<readonly [string, string]>): string {
  return vars
    .map(([name, value]) => {
      if (!ENV_NAME.test(name)) throw new Error(`secret target "${name}" is not a valid environment variable name`);
      if (value.includes("\0")) throw new Error(`secret for "${name}" contains a NUL byte, which an environment cannot hold`);
      return `${name}='${value.replaceAll("'", `'\\''`)}'\n`;
    })
    .join("");
}

/**
 * The in-sandbox launcher: exports the variables from the env file (argument 1),
 * removes the file, closes the fds bwrap read its data from, and execs the rest
 * of its arguments. It is constant text: no value is ever interpolated into it.
 */
export const LAUNCHER_SCRIPT =
  'set -a; . "$1" || exit 126; set +a; rm -f -- "$1"; shift; exec "$@"';
