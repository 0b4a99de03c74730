// `nucleus image prune`: which cached guest images a launch by this Nucleus can
// still pick, and removing the others (each guest-agent change leaves a ~112 MiB
// image behind), damaged and outdated ones included. Not responsible for finding
// an image at launch (image-lookup.ts), though it keeps exactly what that lookup would choose.

import { lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { imageMismatch, imageRoot, listImages, type GuestImage, type UnusableImage } from "./store.js";
import { sha256Handle, type FileHasher } from "./verify.js";

export interface PrunePlan {
  /** For each runtime, the newest image that fits the current agent and that runtime as it is on the host now. */
  readonly keep: readonly GuestImage[];
  /** Every other image dir: older, another agent, a changed runtime, damaged, outdated. */
  readonly remove: readonly { readonly id: string; readonly dir: string; readonly createdAt: string; readonly why?: string }[];
  /** Entries that are not image dirs of ours (a symlink, another user's): left for a person to look at. */
  readonly skipped: readonly UnusableImage[];
}

/**
 * Keeps, per runtime, the one image a launch would pick (`ImageLookup.require`: the newest whose agent is
 * `agentHash`, whose runtime file is unchanged and whose files match their hashes); every other image dir goes.
 * Downloads and half-built dirs are not images and are left alone.
 */
export async function planPrune(agentHash: string, root: string = imageRoot(), hash: FileHasher = sha256Handle): Promise<PrunePlan> {
  const keep: GuestImage[] = [];
  const remove: { id: string; dir: string; createdAt: string; why?: string }[] = [];
  const runtimes = new Set<string>();
  const { images, unusable } = await listImages(root, hash);
  for (const image of images) {
    const runtime = image.manifest.runtime.path;
    if (!runtimes.has(runtime) && imageMismatch(image, { runtime, agentHash }) === null) {
      runtimes.add(runtime);
      keep.push(image);
    } else {
      remove.push({ id: image.manifest.id, dir: image.dir, createdAt: image.manifest.createdAt });
    }
  }
  for (const u of unusable) if (u.status !== "foreign") remove.push({ id: u.name, dir: u.dir, createdAt: u.status, why: u.problem });
  return { keep, remove, skipped: unusable.filter((u) => u.status === "foreign") };
}

/** Bytes of the files directly in an image's dir. */
export function imageBytes(dir: string): number {
  let total = 0;
  try {
    for (const name of readdirSync(dir)) {
      const st = lstatSync(join(dir, name), { throwIfNoEntry: false });
      if (st?.isFile()) total += st.size;
    }
  } catch {
    /* gone or unreadable */
  }
  return total;
}

/** Removes the images `plan` says to remove. */
export function applyPrune(plan: PrunePlan): void {
  // Only real dirs of ours are in plan.remove (symlinked entries are skipped); rm never follows links inside them.
  for (const image of plan.remove) rmSync(image.dir, { recursive: true, force: true });
}
