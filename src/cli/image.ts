// `nucleus image build|ls|rm|prune`: the guest images of the microVM backends.
// Parses flags and prints; the work is in src/sandbox/microvm/image/.

import { parseArgs } from "node:util";
import { ExitCode } from "../errors.js";
import { agentFiles, agentHash } from "../sandbox/microvm/image/agent.js";
import { buildImage } from "../sandbox/microvm/image/build.js";
import { applyPrune, imageBytes, planPrune } from "../sandbox/microvm/image/prune.js";
import { imageRoot, listImages, REBUILD_HINT, removeImage } from "../sandbox/microvm/image/store.js";
import type { CliCommand } from "./command.js";

const usage = `Usage: nucleus image <build|ls|rm|prune> [options]

Guest images for the microVM backends (qemu, firecracker): Debian's kernel,
busybox, this host's Node.js, the guest agent. Servers' code is shared at launch,
so one image serves every server. Images are cached by content hash in
$XDG_CACHE_HOME/nucleus/images (default ~/.cache/nucleus/images).

  nucleus image build [--runtime PATH] [--kernel-package NAME] [--kernel-deb FILE]
      --runtime PATH         the runtime to copy in (default: the Node.js running nucleus)
      --kernel-package NAME  Debian kernel package (default linux-image-amd64), fetched with apt-get download
      --kernel-deb FILE      a kernel .deb already at hand
  nucleus image ls [--json]
      list images; each one's vmlinux and initramfs.cpio are checked against the
      SHA-256 in its manifest, and a damaged or outdated one is shown as such
  nucleus image rm ID        remove an image (an unambiguous prefix of its id)
  nucleus image prune [--dry-run]
      remove every image except, per runtime, the one this nucleus would launch
      (its guest agent, the runtime unchanged); --dry-run only lists. Running from
      source and from dist/ are different agents: each prunes the other's images.
`;

export const imageCommand: CliCommand = {
  name: "image",
  summary: "build, list, remove or prune microVM guest images",
  usage,
  async run(args, ctx) {
    const [sub, ...rest] = args;
    const root = imageRoot(ctx.env);
    if (sub === "build") {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: { runtime: { type: "string" }, "kernel-package": { type: "string" }, "kernel-deb": { type: "string" } },
      });
      const started = Date.now();
      const { image, cached } = await buildImage({
        root,
        runtime: values.runtime,
        kernelPackage: values["kernel-package"],
        kernelDeb: values["kernel-deb"],
        onProgress: (step) => ctx.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${step}\n`),
      });
      ctx.stdout.write(`${image.manifest.id}${cached ? " (cached)" : ""} ${image.dir}\n`);
      return ExitCode.ok;
    }
    if (sub === "ls") {
      const { values } = parseArgs({ args: rest, strict: true, options: { json: { type: "boolean" } } });
      const { images, unusable } = await listImages(root);
      if (values.json) {
        const rows = [...images.map((i) => ({ dir: i.dir, status: "ok", ...i.manifest })), ...unusable.map((u) => ({ dir: u.dir, id: u.name, status: u.status, problem: u.problem }))];
        ctx.stdout.write(JSON.stringify(rows, null, 2) + "\n");
        return ExitCode.ok;
      }
      if (images.length === 0 && unusable.length === 0) {
        ctx.stdout.write(`no images in ${root}; build one with \`nucleus image build\`\n`);
        return ExitCode.ok;
      }
      for (const i of images) {
        const m = i.manifest;
        ctx.stdout.write(`${m.id}  ${m.createdAt}  kernel ${m.kernel.release}  runtime ${m.runtime.path}  ${(m.initramfsBytes / 1048576).toFixed(0)} MiB\n`);
      }
      // Never listed as usable: a launch refuses these (image/store.ts).
      for (const u of unusable) ctx.stdout.write(`${u.name}  ${u.status === "outdated" ? "needs a rebuild" : u.status}: ${u.problem}\n`);
      if (unusable.length > 0) ctx.stdout.write(`hint: ${REBUILD_HINT}\n`);
      return ExitCode.ok;
    }
    if (sub === "rm") {
      const { positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: {} });
      if (positionals.length !== 1) {
        ctx.stderr.write("nucleus image rm: give exactly one image id (see `nucleus image ls`)\n");
        return ExitCode.usage;
      }
      const removed = removeImage(positionals[0]!, root);
      if (!removed) {
        ctx.stderr.write(`nucleus image rm: no image ${positionals[0]} in ${root}\n`);
        return ExitCode.failure;
      }
      ctx.stdout.write(`removed ${positionals[0]}\n`);
      return ExitCode.ok;
    }
    if (sub === "prune") {
      const { values } = parseArgs({ args: rest, strict: true, options: { "dry-run": { type: "boolean" } } });
      const plan = await planPrune(agentHash(await agentFiles()), root);
      const dry = values["dry-run"] === true;
      const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
      for (const i of plan.keep) ctx.stdout.write(`keep          ${i.manifest.id}  ${i.manifest.createdAt}  runtime ${i.manifest.runtime.path} (current)\n`);
      const sizes = plan.remove.map((i) => imageBytes(i.dir));
      if (!dry) applyPrune(plan);
      plan.remove.forEach((i, n) => ctx.stdout.write(`${dry ? "would remove" : "removed     "}  ${i.id}  ${i.createdAt}  ${mib(sizes[n]!)}${i.why ? ` (${i.why})` : ""}\n`));
      for (const u of plan.skipped) ctx.stdout.write(`left alone    ${u.name}  ${u.problem}: not an image dir of this user; look at it and remove it by hand\n`);
      const freed = sizes.reduce((a, b) => a + b, 0);
      ctx.stdout.write(plan.remove.length === 0 ? `nothing to prune in ${root}\n` : `${dry ? "would free" : "freed"} ${mib(freed)} in ${root}\n`);
      return ExitCode.ok;
    }
    ctx.stderr.write(`nucleus image: expected build, ls, rm or prune${sub ? `, got "${sub}"` : ""}\n${usage}`);
    return ExitCode.usage;
  },
};
