// Process entry: runs main() and exits with its code once stdout is flushed.
import { main } from "./main.js";

const code = await main(process.argv.slice(2));
process.exitCode = code;
