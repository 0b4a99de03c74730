// Loads one secret's value from its source (env, file, command, keyring).
// Every failure is a NucleusError "SECRET_UNAVAILABLE" naming the secret and
// its source — never the value. Not responsible for delivery or redaction.

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { SecretSpec } from "../config/spec.js";
import { NucleusError } from "../errors.js";
import { whichSync } from "../sandbox/which.js";
import { capture, type CaptureOutcome } from "./capture.js";

/** Shortest value accepted: shorter values cannot be masked without masking ordinary text. */
export const MIN_SECRET_LENGTH = 4;
/** Largest secret file read. */
export const MAX_SECRET_FILE = 1024 * 1024;

export interface LoadOptions {
  /** The gateway's environment: source of `from = "env"`, PATH and HOME for commands. */
  readonly env: NodeJS.ProcessEnv;
}

export async function loadSecret(spec: SecretSpec, opts: LoadOptions): Promise<string> {
  let value: string;
  switch (spec.from) {
    case "env":
      value = fromEnv(spec, opts.env);
      break;
    case "file":
      value = await fromFile(spec);
      break;
    case "command":
      value = await fromCommand(spec, opts.env);
      break;
    case "keyring":
      value = await fromKeyring(spec, opts.env);
      break;
    default:
      throw unavailable(spec, `has an unknown source "${String((spec as SecretSpec).from)}"`, 'Use from = "env", "file", "command" or "keyring".');
  }
  if (value.length === 0) {
    throw unavailable(spec, "is empty", "Put the value in the source; an empty secret is almost always a mistake.");
  }
  if (value.length < MIN_SECRET_LENGTH) {
    throw unavailable(
      spec,
      `is shorter than ${MIN_SECRET_LENGTH} characters`,
      "Such a value cannot be masked in logs and tool results without masking ordinary text; use a real credential.",
    );
  }
  return value;
}

/** "env GITHUB_TOKEN", "file /run/x", "command pass", "keyring service=github": where the value comes from, never the value. */
export function describeSource(spec: SecretSpec): string {
  switch (spec.from) {
    case "env":
      return `env ${spec.env ?? spec.name}`;
    case "file":
      return `file ${spec.path ?? "(no path)"}`;
    case "command":
      return `command ${spec.command?.[0] ?? "(no command)"}`;
    case "keyring":
      return `keyring ${Object.entries(spec.attributes ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`.trimEnd();
    default:
      return "unknown source";
  }
}

function unavailable(spec: SecretSpec, what: string, hint: string, cause?: unknown): NucleusError {
  return new NucleusError("SECRET_UNAVAILABLE", `secret "${spec.name}" (from ${describeSource(spec)}) ${what}`, {
    hint,
    cause,
  });
}

function fromEnv(spec: SecretSpec, env: NodeJS.ProcessEnv): string {
  const name = spec.env ?? spec.name;
  const value = env[name];
  if (value === undefined) {
    throw unavailable(
      spec,
      `cannot be read: the variable ${name} is not set in the gateway's environment`,
      `Export ${name} in the environment that starts nucleus (your MCP client's config), or set secrets.${spec.name}.env to the variable that holds it.`,
    );
  }
  return value;
}

async function fromFile(spec: SecretSpec): Promise<string> {
  const path = spec.path;
  if (!path) throw unavailable(spec, "has no path", `Set secrets.${spec.name}.path.`);
  let handle;
  try {
    // SECURITY: O_NOFOLLOW — a symlink at the path could be re-pointed (by whoever can write its
    // directory) at a file the secret's owner never meant to hand out.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP") {
      throw unavailable(spec, "is refused: the path is a symlink", `Point secrets.${spec.name}.path at the real file (\`realpath ${path}\`).`, err);
    }
    if (code === "ENOENT") throw unavailable(spec, "cannot be read: the file does not exist", `Create ${path} (mode 0600) or fix secrets.${spec.name}.path.`, err);
    if (code === "EACCES" || code === "EPERM") {
      throw unavailable(spec, "cannot be read: permission denied", `Make ${path} readable by the user that runs nucleus (and only by it: chmod 600).`, err);
    }
    throw unavailable(spec, `cannot be read (${code ?? "error"})`, `Check ${path}.`, err);
  }
  try {
    // SECURITY: permissions are checked on the opened descriptor, so the file
    // that is read is the file that was checked (no swap between stat and read).
    const st = await handle.stat();
    if (!st.isFile()) throw unavailable(spec, "is not a regular file", `Point secrets.${spec.name}.path at a file.`);
    // SECURITY: a file owned by another user (e.g. the sandboxes' run_as user) can be rewritten by it.
    const me = process.getuid?.() ?? -1;
    if (st.uid !== me && st.uid !== 0) {
      throw unavailable(
        spec,
        `is refused: the file is owned by uid ${st.uid}, not by the user that runs nucleus (uid ${me}) or root`,
        `Run \`chown ${me === -1 ? "$(id -u)" : me} ${path}\` (another owner could change the secret).`,
      );
    }
    if ((st.mode & 0o077) !== 0 && !spec.insecurePermissions) {
      const mode = (st.mode & 0o777).toString(8).padStart(3, "0");
      throw unavailable(
        spec,
        `is refused: the file is readable or writable by other users (mode ${mode})`,
        `Run \`chmod 600 ${path}\`, or set secrets.${spec.name}.insecure_permissions = true if this is intended.`,
      );
    }
    if (st.size > MAX_SECRET_FILE) throw unavailable(spec, `is refused: the file is larger than ${MAX_SECRET_FILE} bytes`, "A secret file holds one value.");
    // Bounded read: the file may have grown since the stat.
    const buf = Buffer.alloc(Math.min(st.size, MAX_SECRET_FILE) + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_SECRET_FILE) throw unavailable(spec, `is refused: the file is larger than ${MAX_SECRET_FILE} bytes`, "A secret file holds one value.");
    const text = buf.subarray(0, bytesRead).toString("utf8");
    // Trailing line breaks are an artefact of editors and `echo`, not part of the value.
    return text.replace(/[\r\n]+$/, "");
  } finally {
    await handle.close();
  }
}

async function fromCommand(spec: SecretSpec, env: NodeJS.ProcessEnv): Promise<string> {
  const argv = spec.command;
  if (!argv || argv.length === 0 || !argv[0]) throw unavailable(spec, "has no command", `Set secrets.${spec.name}.command = ["program", "arg", …].`);
  const outcome = await capture(argv, env, spec.timeoutMs);
  return outcomeValue(spec, argv[0], outcome);
}

async function fromKeyring(spec: SecretSpec, env: NodeJS.ProcessEnv): Promise<string> {
  const attrs = Object.entries(spec.attributes ?? {});
  if (attrs.length === 0) {
    throw unavailable(spec, "has no keyring attributes", `Set secrets.${spec.name}.attributes = { service = "…", account = "…" } as stored with \`secret-tool store\`.`);
  }
  const tool = whichSync("secret-tool", env.PATH ?? "");
  if (!tool) {
    throw unavailable(
      spec,
      "cannot be read: secret-tool not found; install libsecret-tools",
      "On Debian/Ubuntu: `sudo apt-get install libsecret-tools` (the desktop keyring must be running), or use another source.",
    );
  }
  const outcome = await capture([tool, "lookup", ...attrs.flat()], env, spec.timeoutMs);
  if (outcome.kind === "exit" && outcome.code === 1) {
    throw unavailable(
      spec,
      "was not found in the keyring (secret-tool exited with code 1)",
      `Store it with \`secret-tool store --label=${spec.name} ${attrs.flat().join(" ")}\`, and check that the keyring is unlocked.`,
    );
  }
  return outcomeValue(spec, "secret-tool", outcome);
}

function outcomeValue(spec: SecretSpec, program: string, outcome: CaptureOutcome): string {
  switch (outcome.kind) {
    case "ok":
      return outcome.stdout.trim();
    case "timeout":
      throw unavailable(
        spec,
        `cannot be read: the command ${program} did not finish within ${spec.timeoutMs} ms and was killed`,
        `Check that ${program} works non-interactively (it may be waiting for a password), or raise secrets.${spec.name}.timeout_ms.`,
      );
    case "too-large":
      throw unavailable(spec, `cannot be read: the command ${program} printed more than 64 KiB and was killed`, "The command must print the value only.");
    case "spawn-error":
      if (outcome.errno === "ENOENT") {
        throw unavailable(spec, `cannot be read: the command ${program} was not found`, "Install it, or give its absolute path as the first element of command.");
      }
      throw unavailable(spec, `cannot be read: the command ${program} could not be started (${outcome.errno})`, "Check that it exists and is executable.");
    case "exit": {
      // SECURITY: neither stdout nor stderr goes into the message: either may hold the value.
      const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
      throw unavailable(spec, `cannot be read: the command ${program} ${how}`, `Run the command by hand to see its error (its output is not shown here because it may contain the secret).`);
    }
  }
}
