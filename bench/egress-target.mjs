// Benchmark target for bench/egress.mjs, in its own process (so the proxy's
// event loop is not also the server's): GET /big streams 100 MiB, anything else "ok".
// Prints its port on stdout once listening.
import { createServer } from "node:http";

const BIG = 100 * 1024 * 1024;
const chunk = Buffer.alloc(256 * 1024, 120);
const server = createServer((req, res) => {
  if (req.url !== "/big") return res.end("ok");
  res.writeHead(200, { "Content-Length": BIG });
  let sent = 0;
  const pump = () => {
    while (sent < BIG) {
      sent += chunk.length;
      if (!res.write(chunk)) return res.once("drain", pump);
    }
    res.end();
  };
  pump();
});
server.listen(0, process.argv[2] ?? "127.0.0.17", () => process.stdout.write(`${server.address().port}\n`));
process.on("SIGTERM", () => process.exit(0));
