// The host's checks on what a guest agent says on the control stream (stream 0):
// a guest message is parsed, its type must be one the protocol knows and each
// field must have its type and range; what comes back is a fresh object with
// only those fields, its text made safe for logs and client messages. Also the
// text helper for anything else the guest writes (console lines). Not
// responsible for framing (frame.ts) or for acting on messages (channel.ts).

import type { GuestMessage } from "../../agent/guest/protocol.js";

/**
 * Largest control message payload the host takes. The agent's messages are a few hundred bytes
 * (hello, started, exit; an error carries one exception message); anything near this is hostile.
 */
export const MAX_CONTROL_PAYLOAD = 64 * 1024;
/** Longest guest-chosen text kept in a message (error messages, the kernel release, log lines). */
export const MAX_GUEST_TEXT = 1024;
/** Longest console line quoted in a message. */
export const MAX_CONSOLE_LINE = 512;
/** Signal names the agent reports (Node's `signalCode`): SIGTERM, SIGKILL, SIGSEGV, ... */
const SIGNAL_NAME = /^SIG[A-Z0-9]{1,10}$/;
/** The highest pid Linux can hand out (pid_max's ceiling, 2^22). */
const MAX_PID = 4_194_304;
const LOG_LEVELS = new Set(["info", "warn", "error"]);

// C0 and C1 controls, DEL, the Unicode line/paragraph separators and the bidi overrides/isolates:
// nothing that can start a new log line or reorder what a reader sees.
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Guest-chosen text made safe to quote: every control character becomes a space, and text over
 * `max` UTF-16 units is cut (never inside a surrogate pair) and marked with "…".
 */
export function guestText(s: string, max = MAX_GUEST_TEXT): string {
  const clean = s.replace(UNSAFE_CHARS, " ");
  if (clean.length <= max) return clean;
  let cut = clean.slice(0, max - 1);
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** The guest console's last three lines, made safe to quote in a message. */
export function consoleTailText(lines: readonly string[]): string {
  return lines
    .slice(-3)
    .map((l) => guestText(l, MAX_CONSOLE_LINE))
    .join(" | ");
}

type Fields = Record<string, unknown>;

/** Throws a sentence naming what is wrong; returns only the protocol's fields. */
export function parseGuestMessage(payload: Buffer): GuestMessage {
  if (payload.length > MAX_CONTROL_PAYLOAD) {
    throw new Error(`the guest agent sent a ${payload.length}-byte control message (the limit is ${MAX_CONTROL_PAYLOAD})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString("utf8"));
  } catch {
    throw new Error("the guest agent sent a control message that is not JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || typeof (raw as Fields).t !== "string") {
    throw new Error("the guest agent sent a control message without a type");
  }
  const m = raw as Fields;
  const bad = (field: string, want: string) =>
    new Error(`the guest agent sent "${m.t as string}" with a ${field} that is not ${want}`);
  switch (m.t) {
    case "hello":
      if (!Number.isSafeInteger(m.version) || (m.version as number) < 0) throw bad("version", "a non-negative integer");
      if (typeof m.kernel !== "string") throw bad("kernel", "a string");
      return { t: "hello", version: m.version as number, kernel: guestText(m.kernel) };
    case "started":
      if (!Number.isSafeInteger(m.pid) || (m.pid as number) < 1 || (m.pid as number) > MAX_PID) throw bad("pid", "a process id");
      return { t: "started", pid: m.pid as number };
    case "error":
      if (typeof m.message !== "string") throw bad("message", "a string");
      return { t: "error", message: guestText(m.message) };
    case "exit": {
      const code = m.code ?? null;
      const signal = m.signal ?? null;
      if (code !== null && (!Number.isInteger(code) || (code as number) < 0 || (code as number) > 255)) throw bad("code", "an exit code (0-255) or null");
      if (signal !== null && (typeof signal !== "string" || !SIGNAL_NAME.test(signal))) throw bad("signal", "a signal name or null");
      return { t: "exit", code: code as number | null, signal: signal as string | null };
    }
    case "log":
      if (typeof m.level !== "string" || !LOG_LEVELS.has(m.level)) throw bad("level", "info, warn or error");
      if (typeof m.msg !== "string") throw bad("msg", "a string");
      return { t: "log", level: m.level as "info" | "warn" | "error", msg: guestText(m.msg) };
    default:
      throw new Error(`the guest agent sent a control message of unknown type "${guestText(String(m.t), 64)}"`);
  }
}
