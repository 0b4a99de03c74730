// Local error family: errors with a stable string code, a sentence and a hint.
// These never cross the wire as-is; the gateway turns them into JSON-RPC errors
// that carry no host path, argv or secret value. Not responsible for logging.

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2, // usage or config error
  refused: 3, // refused by policy (a rule the backend cannot enforce, ...)
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorCode =
  | "CONFIG_INVALID"
  | "CONFIG_NOT_FOUND"
  | "USAGE"
  | "POLICY_REFUSED"
  | "BACKEND_UNAVAILABLE"
  | "SANDBOX_START_FAILED"
  | "SERVER_CRASHED"
  | "SERVER_TIMEOUT"
  | "SERVER_UNAVAILABLE"
  | "FRAME_TOO_LARGE"
  | "SECRET_UNAVAILABLE"
  | "PACKAGE_INSTALL_FAILED"
  | "INTERNAL";

export class NucleusError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; exitCode?: ExitCode } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "NucleusError";
    this.code = code;
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? defaultExit(code);
  }

  /** The message with its hint, as printed to a person. */
  describe(): string {
    return this.hint ? `${this.message}\n  Hint: ${this.hint}` : this.message;
  }
}

function defaultExit(code: ErrorCode): ExitCode {
  switch (code) {
    case "CONFIG_INVALID":
    case "CONFIG_NOT_FOUND":
    case "USAGE":
      return ExitCode.usage;
    case "POLICY_REFUSED":
      return ExitCode.refused;
    default:
      return ExitCode.failure;
  }
}

/** A refusal because a rule cannot be enforced: exit code 3. */
export function refused(message: string, hint: string): NucleusError {
  return new NucleusError("POLICY_REFUSED", message, { hint });
}

export function errorMessage(err: unknown): string {
  if (err instanceof NucleusError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
