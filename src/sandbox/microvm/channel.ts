// The host end of a guest agent's control channel: decodes frames from a byte
// stream (a QEMU chardev socket, a Firecracker vsock connection), hands out the
// guest's control messages and stderr, sends the start and shutdown requests,
// and joins the guest's egress streams to the server's proxy (egress-streams.ts).
// Not responsible for the transport or for the VM's lifetime.

import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import { encodeFrame, FrameDecoder, FrameType } from "../../agent/guest/frame.js";
import type { EgressMux } from "../../agent/guest/egress-mux.js";
import { FIRST_EGRESS_STREAM, STREAM_CONTROL, STREAM_STDERR, type GuestMessage, type HostMessage } from "../../agent/guest/protocol.js";
import { hostEgressMux } from "./egress-streams.js";

export class ControlChannel extends EventEmitter<{ message: [GuestMessage]; error: [Error]; warning: [Error]; close: [] }> {
  /** The server's stderr as relayed by the agent. */
  readonly stderr = new PassThrough();
  private readonly decoder = new FrameDecoder();
  /** The first message of each type (hello, started, exit, ...): bounded, whatever the guest sends. */
  private readonly seen = new Map<string, GuestMessage>();
  /** Why the channel was cut, when the guest broke the protocol. */
  protocolError: Error | null = null;
  /** Egress streams; without `egressSocket` every stream the guest opens is refused. */
  private readonly egress: EgressMux;

  /** `egressSocket`: this server's egress proxy socket (allowlist servers), or null. */
  constructor(
    private readonly socket: Duplex,
    egressSocket: string | null = null,
  ) {
    super();
    this.egress = hostEgressMux({
      write: (frame) => (socket.destroyed ? true : socket.write(frame)),
      proxySocket: egressSocket,
      onViolation: (message, fatal) => {
        const err = new Error(`the guest agent broke the egress protocol: ${message}`);
        if (fatal) {
          this.emit("error", err);
          socket.destroy();
        } else this.emit("warning", err);
      },
    });
    socket.on("drain", () => this.egress.drained());
    // SECURITY: the guest is untrusted. A protocol error must never become an
    // unhandled 'error' event (which would crash the gateway): it is recorded,
    // logged by listeners if any, and the channel is cut.
    this.on("error", (err) => {
      this.protocolError ??= err;
    });
    socket.on("data", (chunk: Buffer) => {
      let frames;
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        // SECURITY: a guest that breaks the framing is not trusted further.
        this.emit("error", new Error(`the guest agent broke the control protocol: ${(err as Error).message}`));
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (f.stream === STREAM_STDERR && f.type === FrameType.data) this.stderr.write(f.payload);
        else if (f.stream === STREAM_CONTROL && f.type === FrameType.control) {
          let msg: GuestMessage;
          try {
            msg = JSON.parse(f.payload.toString("utf8")) as GuestMessage;
          } catch {
            this.emit("error", new Error("the guest agent sent a control message that is not JSON"));
            socket.destroy();
            return;
          }
          if (typeof msg !== "object" || msg === null || typeof (msg as { t?: unknown }).t !== "string") {
            this.emit("error", new Error("the guest agent sent a control message without a type"));
            socket.destroy();
            return;
          }
          if (!this.seen.has(msg.t)) this.seen.set(msg.t, msg);
          this.emit("message", msg);
        }
        else if (f.stream >= FIRST_EGRESS_STREAM) {
          this.egress.handle(f);
          if (socket.destroyed) return;
        }
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.egress.closeAll();
      this.stderr.end();
      this.emit("close");
    });
  }

  send(msg: HostMessage): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(STREAM_CONTROL, FrameType.control, JSON.stringify(msg)));
  }

  /** The first message of type `t` (already received or still to come); rejects when the channel closes first. */
  waitFor<T extends GuestMessage["t"]>(t: T, timeoutMs: number): Promise<Extract<GuestMessage, { t: T }>> {
    const early = this.seen.get(t);
    if (early) return Promise.resolve(early as Extract<GuestMessage, { t: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`the guest agent sent no "${t}" within ${timeoutMs} ms`)), timeoutMs);
      const onMsg = (m: GuestMessage) => {
        if (m.t === t) done(null, m as Extract<GuestMessage, { t: T }>);
        else if (m.t === "error") done(new Error(`the guest agent reported: ${m.message}`));
      };
      const onClose = () => done(new Error(`the control channel closed before the guest agent sent "${t}"`));
      const done = (err: Error | null, m?: Extract<GuestMessage, { t: T }>) => {
        clearTimeout(timer);
        this.off("message", onMsg);
        this.off("close", onClose);
        if (err) reject(err);
        else resolve(m!);
      };
      this.on("message", onMsg);
      this.on("close", onClose);
    });
  }

  /** The server's exit as reported by the agent, if it was. */
  get reportedExit(): Extract<GuestMessage, { t: "exit" }> | null {
    return (this.seen.get("exit") as Extract<GuestMessage, { t: "exit" }> | undefined) ?? null;
  }

  close(): void {
    this.socket.destroy();
  }
}
