// Finding the guest image a microVM launch needs, with the error a person can
// act on when there is none. Shared by the QEMU and Firecracker backends.
// Not responsible for building images (image/build.ts).

import { realpathSync } from "node:fs";
import { NucleusError } from "../../errors.js";
import { agentFiles, agentHash } from "./image/agent.js";
import { findImage, imageRoot, listImages, type GuestImage } from "./image/store.js";

export class ImageLookup {
  private agentHashMemo: Promise<string> | null = null;

  constructor(private readonly root: string = imageRoot()) {}

  private currentAgentHash(): Promise<string> {
    this.agentHashMemo ??= agentFiles().then(agentHash);
    return this.agentHashMemo;
  }

  /** The newest image this gateway's agent speaks to, for gaps(); null when none (launch then explains). */
  async current(): Promise<GuestImage | null> {
    const hash = await this.currentAgentHash();
    return listImages(this.root).find((i) => i.manifest.agentHash === hash) ?? null;
  }

  async runtime(): Promise<string | null> {
    return (await this.current())?.manifest.runtime.path ?? null;
  }

  async hasImage(): Promise<boolean> {
    return (await this.current()) !== null;
  }

  /** The image for a server whose runtime is `argv0`; throws a sentence with a hint when none fits. */
  async require(serverName: string, argv0: string): Promise<GuestImage> {
    let runtime = argv0;
    try {
      runtime = realpathSync(argv0);
    } catch {
      /* reported as a mismatch below */
    }
    const { image, rejected } = findImage({ runtime, agentHash: await this.currentAgentHash() }, this.root);
    if (image) return image;
    const why = rejected.length > 0 ? ` (found ${rejected.length}, none fits: ${rejected.join("; ")})` : "";
    throw new NucleusError("BACKEND_UNAVAILABLE", `no guest image for server "${serverName}" in ${this.root}${why}`, {
      hint: "run `nucleus image build` (it downloads Debian's kernel and packs Node.js and the guest agent; about a minute)",
    });
  }
}
