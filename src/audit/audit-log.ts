// The audit log sink: JSON Lines with a hash chain, appended with O_APPEND
// under a lock file, rotated by size (FILE → FILE.1 → … FILE.keep) with the
// chain carried across files. Not responsible for event contents (events.ts).

import { randomBytes } from "node:crypto";
import { lstat, mkdir, rename, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { NucleusError } from "../errors.js";
import type { AuditEvent } from "./events.js";
import { withFileLock } from "./lock.js";
import { encodeRecord, genesisHash, MAX_RECORD_BYTES } from "./record.js";
import { openForAppend } from "./open-file.js";
import { readChainEnd, readLastRecord } from "./tail-read.js";

export interface AuditLogOptions {
  /** Rotate once the current file would grow past this many bytes (0: never). */
  readonly maxBytes?: number;
  /** Rotated files kept (FILE.1 … FILE.keep), at least 1. */
  readonly keep?: number;
  /** fsync after every record (durable, slower). */
  readonly fsync?: boolean;
  /** Applied to every record's fields before it is written (SecretRedactor.redactJson). */
  readonly redact?: (fields: Readonly<Record<string, unknown>>) => Readonly<Record<string, unknown>>;
  /** How long to wait for another process's lock. */
  readonly lockTimeoutMs?: number;
  /** Clock, for tests. */
  readonly now?: () => Date;
}

interface Position {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly seq: number;
  readonly hash: string;
  readonly chain: string;
}

export class AuditLog {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly opts: AuditLogOptions;
  private handle: FileHandle | null = null;
  private pos: Position | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(path: string, opts: AuditLogOptions = {}) {
    this.path = path;
    this.maxBytes = opts.maxBytes ?? 0;
    this.keep = Math.max(1, opts.keep ?? 5);
    this.opts = opts;
  }

  /** Appends one event; calls are serialised in call order. Resolves with the record's seq once written. */
  append(event: AuditEvent): Promise<number> {
    if (this.closed) return Promise.reject(new NucleusError("INTERNAL", `the audit log ${this.path} is closed`));
    const run = this.queue.then(async () => {
      await this.ensureDir();
      return withFileLock(`${this.path}.lock`, this.opts.lockTimeoutMs ?? 10_000, () => this.write(event));
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Opens the log now (creating it and its first record when new) and reads where its chain stands, so that a
   * path that cannot be used fails at start, not at the first append. Appends open it themselves too.
   */
  open(): Promise<void> {
    if (this.closed) return Promise.reject(new NucleusError("INTERNAL", `the audit log ${this.path} is closed`));
    const run = this.queue.then(async () => {
      await this.ensureDir();
      await withFileLock(`${this.path}.lock`, this.opts.lockTimeoutMs ?? 10_000, () => this.sync()).catch(async (err: unknown) => {
        await this.handle?.close().catch(() => undefined);
        this.handle = null;
        this.pos = null;
        throw err;
      });
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Waits for pending appends and closes the file. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    await this.handle?.close();
    this.handle = null;
  }

  private async ensureDir(): Promise<void> {
    // SECURITY: a directory created here is 0700; an existing one is left as it is.
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 }).catch((err: Error) => {
      throw new NucleusError("CONFIG_INVALID", `the audit log's directory ${dirname(this.path)} cannot be created: ${err.message}`, {
        hint: "Point [gateway] audit_log at a path in a directory the gateway's user can create or write.",
        cause: err,
      });
    });
  }

  private async write(event: AuditEvent): Promise<number> {
    let pos = await this.sync();
    const fields = this.opts.redact ? this.opts.redact(event.fields) : event.fields;
    let rec = encodeRecord({ seq: pos.seq + 1, time: this.time(), type: event.type, fields, prev: pos.hash });
    if (rec.bytes.length - 1 > MAX_RECORD_BYTES) {
      throw new NucleusError("INTERNAL", `a ${event.type} record of ${rec.bytes.length} bytes is longer than the audit log's limit of ${MAX_RECORD_BYTES} bytes; it was not written`, {
        hint: "Set [gateway] audit_arguments = false, or lower the message size limit, so that records stay small.",
      });
    }
    if (this.maxBytes > 0 && pos.size > 0 && pos.size + rec.bytes.length > this.maxBytes) {
      pos = await this.rotate(pos);
      rec = encodeRecord({ seq: pos.seq + 1, time: this.time(), type: event.type, fields, prev: pos.hash });
    }
    return this.put(pos, rec.bytes, rec.hash);
  }

  /** Writes one record's bytes exactly as encodeRecord hashed them. */
  private async put(pos: Position, data: Buffer, hash: string): Promise<number> {
    // O_APPEND: lands at the end even if another writer got there first. One write per record.
    const { bytesWritten } = await this.handle!.write(data);
    if (bytesWritten !== data.length) {
      throw new NucleusError("INTERNAL", `the audit log ${this.path} took only ${bytesWritten} of ${data.length} bytes of a record (disk full?)`, {
        hint: "Free space, then run `nucleus audit verify` and move the damaged file aside.",
      });
    }
    if (this.opts.fsync) await this.handle!.datasync();
    this.pos = { ...pos, size: pos.size + data.length, seq: pos.seq + 1, hash };
    return pos.seq + 1;
  }

  /** Brings the open file and the chain position up to date with what is on disk (another process may have written or rotated). */
  private async sync(): Promise<Position> {
    // lstat: a symlink put in the file's place is a different file, reopened (and refused) below.
    const onDisk = await lstat(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return null;
      throw err;
    });
    const cur = this.pos;
    if (cur && this.handle && onDisk && onDisk.dev === cur.dev && onDisk.ino === cur.ino && onDisk.size === cur.size) return cur;
    await this.handle?.close();
    this.handle = null;
    // SECURITY: no symlink followed, only the gateway's own regular file, 0600 (open-file.ts).
    this.handle = await openForAppend(this.path);
    const st = await this.handle.stat();
    const last = st.size > 0 ? await readChainEnd(this.handle, this.path) : await readLastRecord(`${this.path}.1`, true);
    const base = { dev: st.dev, ino: st.ino, size: st.size };
    if (last === null) {
      // A new chain: its first record names the chain, and its prev is the chain's genesis.
      const chain = randomBytes(16).toString("hex");
      const pos: Position = { ...base, seq: 0, hash: genesisHash(chain), chain };
      const head = encodeRecord({ seq: 1, time: this.time(), type: "audit.file", fields: { chain, reason: "created" }, prev: pos.hash });
      await this.put(pos, head.bytes, head.hash);
      return this.pos!;
    }
    const pos: Position = { ...base, seq: last.seq, hash: last.hash, chain: last.chain };
    if (st.size === 0) {
      // The current file is new but FILE.1 holds the chain (crash after a rotation): continue it.
      return this.head(pos, "continued");
    }
    this.pos = pos;
    return pos;
  }

  private async rotate(pos: Position): Promise<Position> {
    await this.handle?.close();
    this.handle = null;
    for (let i = this.keep - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    }
    await rename(this.path, `${this.path}.1`);
    this.handle = await openForAppend(this.path);
    const st = await this.handle.stat();
    return this.head({ ...pos, dev: st.dev, ino: st.ino, size: st.size }, "rotated");
  }

  /** Writes the first record of a file that continues the chain. */
  private async head(pos: Position, reason: "rotated" | "continued"): Promise<Position> {
    const head = encodeRecord({ seq: pos.seq + 1, time: this.time(), type: "audit.file", fields: { chain: pos.chain, reason }, prev: pos.hash });
    await this.put(pos, head.bytes, head.hash);
    return this.pos!;
  }

  private time(): string {
    return (this.opts.now?.() ?? new Date()).toISOString();
  }
}
