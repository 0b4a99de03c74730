// Finding the guest image a microVM launch needs, its files checked against the
// hashes recorded at build time, with the error a person can act on when there
// is none. Shared by the QEMU and Firecracker backends.
// Not responsible for building images (image/build.ts).

import { realpathSync } from "node:fs";
import { NucleusError } from "../../errors.js";
import { agentFiles, agentHash } from "./image/agent.js";
import { findImage, imageRoot, REBUILD_HINT, scanImages, verifyImage, type GuestImage } from "./image/store.js";
import { sha256Handle, type FileHasher } from "./image/verify.js";

export interface ImageLookupOptions {
  /** How files are hashed (tests count calls); default SHA-256 of the file. */
  readonly hash?: FileHasher;
}

export class ImageLookup {
  private agentHashMemo: Promise<string> | null = null;
  private readonly hash: FileHasher;

  constructor(
    private readonly root: string = imageRoot(),
    opts: ImageLookupOptions = {},
  ) {
    this.hash = opts.hash ?? sha256Handle;
  }

  private currentAgentHash(): Promise<string> {
    this.agentHashMemo ??= agentFiles().then(agentHash);
    return this.agentHashMemo;
  }

  /** The newest image this gateway's agent speaks to, its files checked, for gaps(); null when none (launch then explains). */
  async current(): Promise<GuestImage | null> {
    const hash = await this.currentAgentHash();
    const image = scanImages(this.root).images.find((i) => i.manifest.agentHash === hash);
    if (!image) return null;
    return (await verifyImage(image, this.hash)) === null ? image : null;
  }

  async runtime(): Promise<string | null> {
    return (await this.current())?.manifest.runtime.path ?? null;
  }

  async hasImage(): Promise<boolean> {
    return (await this.current()) !== null;
  }

  /** The image for a server whose runtime is `argv0`; throws a sentence with a hint when none fits or it is damaged. */
  async require(serverName: string, argv0: string): Promise<GuestImage> {
    let runtime = argv0;
    try {
      runtime = realpathSync(argv0);
    } catch {
      /* reported as a mismatch below */
    }
    const { image, damaged, rejected } = await findImage({ runtime, agentHash: await this.currentAgentHash() }, this.root, this.hash);
    if (image) return image;
    if (damaged) {
      // SECURITY: fail closed — a tampered or truncated image is never booted, and no older one is silently used instead.
      throw new NucleusError("BACKEND_UNAVAILABLE", `guest image ${damaged.name} for server "${serverName}" is damaged: ${damaged.problem}`, {
        hint: REBUILD_HINT.replace("ID", damaged.name),
      });
    }
    const why = rejected.length > 0 ? ` (found ${rejected.length}, none fits: ${rejected.join("; ")})` : "";
    throw new NucleusError("BACKEND_UNAVAILABLE", `no guest image for server "${serverName}" in ${this.root}${why}`, {
      hint: "run `nucleus image build` (it downloads Debian's kernel and packs Node.js and the guest agent; about a minute)",
    });
  }
}
