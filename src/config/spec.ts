// The resolved, frozen policy of one server (ServerSpec) and of the gateway.
// This is the only shape that backends, the gateway and the egress proxy read;
// raw TOML never travels past src/config/. Not responsible for parsing.

export type BackendName = "unsandboxed" | "bubblewrap" | "qemu" | "firecracker";
export type BackendChoice = "auto" | BackendName;

/** One egress allowlist rule, parsed and normalised (see src/policy/hosts.ts). */
export interface HostRule {
  /** As written in the config, for messages and audit. */
  readonly raw: string;
  /** name: exact host; wildcard: "*.suffix" (subdomains only); ip / cidr: literal address or network. */
  readonly kind: "name" | "wildcard" | "ip" | "cidr";
  /** Lower-case ASCII (punycode), no trailing dot. wildcard: the suffix without "*.". ip/cidr: canonical address. */
  readonly host: string;
  /** cidr only. */
  readonly prefixLength?: number;
  /** Allowed ports; [443, 80] when the rule names none. */
  readonly ports: readonly number[];
  readonly portExplicit: boolean;
}

export type NetworkPolicy =
  | { readonly mode: "none" }
  | { readonly mode: "allowlist"; readonly hosts: readonly HostRule[] };

/** A host path granted to the server; `path` is absolute and realpath'd at resolution. */
export interface PathGrant {
  readonly path: string;
  readonly writable: boolean;
}

export interface ResourceLimits {
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly pids: number;
  /** Size of the private tmpfs /tmp and home. */
  readonly tmpMiB: number;
  /** Which limits the user set explicitly (an explicit limit that cannot be enforced refuses the start). */
  readonly explicit: { readonly memory: boolean; readonly cpus: boolean; readonly pids: boolean };
}

export interface NpmPackage {
  readonly registry: "npm";
  readonly name: string;
  readonly version: string;
  /** "npm:name@version" as written. */
  readonly spec: string;
}

/** What runs inside the sandbox. */
export interface Launch {
  /**
   * Absolute argv: argv[0] resolved on the host's PATH at resolution time.
   * Empty for a `package` server until the package store has installed it
   * (src/gateway/packages.ts returns a spec with argv filled in).
   */
  readonly argv: readonly string[];
  /** Extra arguments (`args`), already appended to argv for command servers. */
  readonly args: readonly string[];
  readonly package: NpmPackage | null;
  /** Working directory inside the sandbox; null = the private home. */
  readonly cwd: string | null;
  /** Non-secret environment for the server (secrets travel separately, see LaunchContext). */
  readonly env: Readonly<Record<string, string>>;
  /** Read-only directories holding the server's own code (package root, node_modules it resolves from). */
  readonly codeDirs: readonly string[];
}

export interface SecretRef {
  /** Name of the [secrets.NAME] entry. */
  readonly name: string;
  /** Environment variable (or file name with as = "file") the server receives it under. */
  readonly target: string;
  readonly as: "env" | "file";
}

export interface ServerSpec {
  readonly name: string;
  readonly profile: string | null;
  readonly backend: BackendChoice;
  readonly launch: Launch;
  readonly paths: readonly PathGrant[];
  readonly network: NetworkPolicy;
  readonly secrets: readonly SecretRef[];
  readonly limits: ResourceLimits;
  readonly tools: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly timeouts: { readonly startupMs: number; readonly requestMs: number; readonly shutdownGraceMs: number };
  readonly lazy: boolean;
  readonly insecureUnsandboxed: boolean;
  readonly redactResults: boolean;
}

export interface SecretSpec {
  readonly name: string;
  readonly from: "env" | "file" | "command" | "keyring";
  /** env: variable to read (default: the secret's name). */
  readonly env: string | null;
  /** file: absolute path. */
  readonly path: string | null;
  readonly insecurePermissions: boolean;
  /** command: argv, run without a shell. */
  readonly command: readonly string[] | null;
  readonly timeoutMs: number;
  /** keyring: attributes for `secret-tool lookup`. */
  readonly attributes: Readonly<Record<string, string>> | null;
}

export interface GatewaySpec {
  readonly backend: BackendChoice;
  /** Absolute path (with ~ expanded) or null when auditing is off. */
  readonly auditLog: string | null;
  readonly auditArguments: boolean;
  readonly auditMaxBytes: number;
  /**
   * A root gateway starts bubblewrap sandboxes as this unprivileged user
   * (`[gateway] run_as`), so that a kernel bug inside one yields that user, not root.
   */
  readonly runAs: { readonly user: string; readonly uid: number; readonly gid: number } | null;
  /** Largest JSON-RPC message accepted from a server or a client. */
  readonly maxMessageBytes: number;
  /** Streamable HTTP endpoint (in addition to stdio with `serve --http`); null = none configured. */
  readonly http: HttpSpec | null;
}

export interface HttpSpec {
  readonly listen: string;
  readonly port: number;
  /** Name of the [secrets.NAME] entry holding the bearer token; null = a random token printed at start. */
  readonly token: string | null;
  /** Browser origins allowed to call; any other Origin header gets 403. */
  readonly allowedOrigins: readonly string[];
  readonly maxSessions: number;
  readonly idleTimeoutMs: number;
  /** The dangerous switch: listen on a non-loopback address. */
  readonly insecureListenAny: boolean;
}

export interface NucleusConfig {
  /** Absolute path of the file it was loaded from. */
  readonly source: string;
  readonly gateway: GatewaySpec;
  readonly servers: readonly ServerSpec[];
  readonly secrets: Readonly<Record<string, SecretSpec>>;
}
