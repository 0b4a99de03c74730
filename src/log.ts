// Structured logging to stderr (stdout belongs to the MCP protocol).
// Every line passes through the redactor so no loaded secret value is written.
// Not responsible for the audit log (src/audit/).

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFormat = "text" | "json";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogSink {
  write(line: string): void;
}

export type Redactor = (text: string) => string;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  sink?: LogSink;
  /** Masks secret values; the secrets module installs one. */
  redact?: Redactor;
  fields?: Record<string, unknown>;
}

export class Logger {
  readonly level: LogLevel;
  readonly format: LogFormat;
  private readonly sink: LogSink;
  private readonly fields: Record<string, unknown>;
  private readonly redactRef: { fn: Redactor };

  constructor(opts: LoggerOptions = {}, redactRef?: { fn: Redactor }) {
    this.level = opts.level ?? "info";
    this.format = opts.format ?? "text";
    this.sink = opts.sink ?? { write: (l) => process.stderr.write(l) };
    this.fields = opts.fields ?? {};
    this.redactRef = redactRef ?? { fn: opts.redact ?? ((t) => t) };
  }

  /** A logger that adds fields (e.g. `server`) to every line and shares the redactor. */
  child(fields: Record<string, unknown>): Logger {
    return new Logger(
      { level: this.level, format: this.format, sink: this.sink, fields: { ...this.fields, ...fields } },
      this.redactRef,
    );
  }

  /** Replace the redactor for this logger and all its children. */
  setRedactor(fn: Redactor): void {
    this.redactRef.fn = fn;
  }

  /** Masks secret values in `text` (what every line gets before it is written). */
  redact(text: string): string {
    return this.redactRef.fn(text);
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.emit("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.emit("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.emit("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.emit("error", msg, fields);
  }

  private emit(level: Exclude<LogLevel, "silent">, msg: string, extra?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const all = { ...this.fields, ...extra };
    let line: string;
    if (this.format === "json") {
      line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...all });
    } else {
      const tags = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      line = `nucleus ${level.padEnd(5)} ${msg}${tags ? ` (${tags})` : ""}`;
    }
    this.sink.write(this.redactRef.fn(line) + "\n");
  }
}

export function parseLogLevel(value: string): LogLevel | undefined {
  return value in ORDER ? (value as LogLevel) : undefined;
}
