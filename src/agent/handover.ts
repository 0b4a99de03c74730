// Handing the agent's loopback listeners to the gateway, so that the host's
// egress proxy accepts on them itself and only one process relays each byte.
// Over Node's IPC channel (the only way Node passes a descriptor), once, before
// the server starts: the agent sends each listener, the gateway answers that it
// has adopted them, and both close the channel — the server, started after
// that, never has a channel to talk on. No imports beyond Node: runs inside the
// sandbox too (the gateway imports the message names).

import type { Server } from "node:net";

/** A listener follows: `pin` null for the proxy port, else the pinned host and port. */
export const LISTENER = "nucleus-egress-listener";
/** Every listener was sent (some pins may have failed to listen). */
export const SENT = "nucleus-egress-sent";
/** The gateway's answer: it accepts on them now; the agent closes its copies. */
export const ADOPTED = "nucleus-egress-adopted";

export interface ListenerMessage {
  readonly type: typeof LISTENER;
  readonly pin: { readonly host: string; readonly port: number } | null;
}

/** The env names of Node's IPC channel, which the server must not inherit. */
export const CHANNEL_ENV = ["NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE"] as const;

/**
 * Sends `listeners` to the gateway and waits (at most `timeoutMs`) for its answer.
 * true: adopted, the agent's own copies are closed. false: no channel, or no answer —
 * the caller relays on its listeners itself, as before.
 */
export async function handOver(listeners: ReadonlyArray<{ server: Server; pin: ListenerMessage["pin"] }>, timeoutMs: number): Promise<boolean> {
  const send = process.send?.bind(process);
  if (!send || !process.connected) return false;
  const answered = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const onMessage = (m: unknown) => {
      if ((m as { type?: unknown } | null)?.type !== ADOPTED) return;
      clearTimeout(timer);
      process.off("message", onMessage);
      resolve(true);
    };
    process.on("message", onMessage);
    process.once("disconnect", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  try {
    for (const l of listeners) {
      await new Promise<void>((resolve, reject) => send({ type: LISTENER, pin: l.pin } satisfies ListenerMessage, l.server, {}, (err) => (err ? reject(err) : resolve())));
    }
    await new Promise<void>((resolve, reject) => send({ type: SENT }, undefined, {}, (err) => (err ? reject(err) : resolve())));
  } catch {
    await disconnected();
    return false;
  }
  const adopted = await answered;
  // The channel must be gone (not just going) before the caller starts the server.
  await disconnected();
  if (adopted) for (const l of listeners) l.server.close();
  return adopted;
}

/** Ends the channel and waits until Node has closed it. */
function disconnected(): Promise<void> {
  if (!process.connected) return Promise.resolve();
  return new Promise((resolve) => {
    process.once("disconnect", () => resolve());
    process.disconnect();
  });
}
