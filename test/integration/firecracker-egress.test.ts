// allowed_hosts in a Firecracker microVM: the same hostile MCP server and the
// same tests as qemu-egress.test.ts (test/helpers/vm-egress.ts), in a VM with no
// NIC, reaching the host only through the guest agent's egress streams over the
// vsock control channel (socat in the guest, bounded), joined by the host to a
// real egress proxy. Only where /dev/kvm works and NUCLEUS_FIRECRACKER_BIN is
// set; under the jailer when this runs as root and one is found, else
// explicitly without it.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FirecrackerBackend } from "../../src/sandbox/microvm/firecracker/backend.js";
import { findFirecracker } from "../../src/sandbox/microvm/firecracker/host.js";
import { chooseAccel } from "../../src/sandbox/microvm/qemu/host.js";
import { ensureTestUser } from "../helpers/test-user.js";
import { describeVmEgress } from "../helpers/vm-egress.js";

const noFirecracker = chooseAccel({}).accel !== "kvm" || !process.env.NUCLEUS_FIRECRACKER_BIN;
const jailerFound = !noFirecracker && process.getuid?.() === 0 && findFirecracker({ runAs: { uid: 1, gid: 1 } }, { uid: 0, gid: 0 }, tmpdir()).ok;

describeVmEgress("egress from a Firecracker microVM (needs /dev/kvm with vmx/svm and NUCLEUS_FIRECRACKER_BIN)", noFirecracker, (spec, o) => {
  const backend = new FirecrackerBackend(jailerFound ? { runAs: ensureTestUser(), chrootBase: join(o.tmp, "jail"), snapshotRoot: join(o.tmp, "snapshots") } : { insecureNoJailer: true });
  return backend.launch(spec, { secrets: new Map(), log: o.log, egressSocket: o.egressSocket });
});
