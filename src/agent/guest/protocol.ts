// The messages of the control stream (stream 0) between the host and the guest
// agent, and the names of the host channels. Payloads are JSON in `control`
// frames (see frame.ts). Not responsible for transport or framing.
// Shared by host and guest: no imports outside src/agent/guest.

/** virtio-serial port names (QEMU); Firecracker uses the vsock ports below instead. */
export const PORT_MCP = "nucleus.mcp";
export const PORT_CONTROL = "nucleus.ctl";
/** Firecracker vsock ports the guest listens on (host connects with `CONNECT <port>`). */
export const VSOCK_PORT_CONTROL = 1024;
export const VSOCK_PORT_MCP = 1025;

export const STREAM_CONTROL = 0;
/** The server's stderr, guest → host, `data` frames. */
export const STREAM_STDERR = 1;
/** Streams from this id up are egress connections, opened by the guest (see egress-mux.ts). */
export const FIRST_EGRESS_STREAM = 16;

export const AGENT_PROTOCOL_VERSION = 1;

export interface MountRequest {
  /** virtio-9p mount tag (QEMU) or block device (Firecracker, e.g. /dev/vdb). */
  readonly source: string;
  readonly kind: "9p" | "block";
  /** Absolute path in the guest (the same path as on the host). */
  readonly path: string;
  readonly writable: boolean;
  /** Code directories may be cached aggressively; granted paths are not. */
  readonly cache: "loose" | "none";
  /** Block devices: the image's size in bytes; the agent waits until the device shows it (restored guests). */
  readonly sizeBytes?: number;
}

export interface SecretDelivery {
  readonly target: string;
  readonly as: "env" | "file";
  readonly value: string;
}

/**
 * What the guest agent sets up for an allowlist server: listeners on loopback that
 * relay to the host's egress proxy over egress streams. Computed by the host
 * (src/agent/plan.ts); the proxy variables arrive in the start request's env.
 */
export interface EgressPlan {
  /** 127.0.0.1:proxyPort takes HTTP CONNECT, absolute-URI and SOCKS5 clients. */
  readonly proxyPort: number;
  /** Exact allowed host:port pairs, each on its own loopback address; the preamble opens its stream. */
  readonly pins: readonly { readonly address: string; readonly port: number; readonly preamble: string }[];
  /** The guest's /etc/hosts: localhost, and each pinned name at its address. */
  readonly hosts: string;
}

export type HostMessage =
  | {
      readonly t: "start";
      readonly argv: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      readonly cwd: string | null;
      readonly mounts: readonly MountRequest[];
      readonly secrets: readonly SecretDelivery[];
      readonly tmpMiB: number;
      /** Absent or null: the server has network = "none" and the guest gets no listener. */
      readonly egress?: EgressPlan | null;
      /** Base64 random bytes from the host, mixed into the guest's RNG (clones of a snapshot share its state). */
      readonly entropy?: string;
    }
  | { readonly t: "shutdown"; readonly graceMs: number };

export type GuestMessage =
  | { readonly t: "hello"; readonly version: number; readonly kernel: string }
  | { readonly t: "started"; readonly pid: number }
  | { readonly t: "error"; readonly message: string }
  | { readonly t: "exit"; readonly code: number | null; readonly signal: string | null }
  | { readonly t: "log"; readonly level: "info" | "warn" | "error"; readonly msg: string };

/** Where secrets with as = "file" are written in the guest (a tmpfs, mode 0700). */
export const GUEST_SECRETS_DIR = "/run/nucleus/secrets";
