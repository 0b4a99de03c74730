// Process entry: runs main() and exits with its code once stdout is flushed
// (an open stdin would otherwise keep the process alive after SIGTERM).
import { main } from "./main.js";
import { closeInheritedFds } from "../sandbox/host-fds.js";

// SECURITY: fds handed to us without close-on-exec would reach every server we start.
closeInheritedFds();
const code = await main(process.argv.slice(2));
// A reader that went away (`nucleus doctor | head`) is not an error of ours.
process.stdout.on("error", () => process.exit(code));
process.stdout.write("", () => process.exit(code));
