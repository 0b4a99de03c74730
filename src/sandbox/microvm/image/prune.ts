// `nucleus image prune`: which cached guest images a launch by this Nucleus can
// still pick, and removing the others (each guest-agent change leaves a ~112 MiB
// image behind). Not responsible for finding an image at launch (image-lookup.ts),
// though it keeps exactly what that lookup would choose.

import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { imageMismatch, imageRoot, listImages, type GuestImage } from "./store.js";

export interface PrunePlan {
  /** For each runtime, the newest image that fits the current agent and that runtime as it is on the host now. */
  readonly keep: readonly GuestImage[];
  readonly remove: readonly GuestImage[];
}

/**
 * Keeps, per runtime, the one image a launch would pick (`ImageLookup.require`: the newest whose agent is
 * `agentHash` and whose runtime file is unchanged); every other complete image goes. Downloads and
 * half-built dirs are not images and are left alone.
 */
export function planPrune(agentHash: string, root: string = imageRoot()): PrunePlan {
  const keep: GuestImage[] = [];
  const remove: GuestImage[] = [];
  const runtimes = new Set<string>();
  for (const image of listImages(root)) {
    const runtime = image.manifest.runtime.path;
    if (!runtimes.has(runtime) && imageMismatch(image, { runtime, agentHash }) === null) {
      runtimes.add(runtime);
      keep.push(image);
    } else {
      remove.push(image);
    }
  }
  return { keep, remove };
}

/** Bytes of the files directly in an image's dir. */
export function imageBytes(image: GuestImage): number {
  let total = 0;
  for (const name of readdirSync(image.dir)) {
    try {
      const st = statSync(join(image.dir, name));
      if (st.isFile()) total += st.size;
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Removes the images `plan` says to remove. */
export function applyPrune(plan: PrunePlan): void {
  // rm removes a symlinked image dir as the link, and never follows links inside it.
  for (const image of plan.remove) rmSync(image.dir, { recursive: true, force: true });
}
