// Public entry of the microVM backends: the two Backend classes and the image
// store/builder the CLI and the gateway use. Not responsible for choosing a
// backend (src/sandbox/select.ts).

export { QemuBackend, type QemuBackendOptions } from "./qemu/backend.js";
export { FirecrackerBackend, type FirecrackerBackendOptions } from "./firecracker/backend.js";
export { findFirecracker, type FirecrackerHost } from "./firecracker/host.js";
export { buildImage, type BuildOptions } from "./image/build.js";
export { imageRoot, listImages, removeImage, type GuestImage, type ImageManifest } from "./image/store.js";
export { chooseAccel } from "./qemu/host.js";
