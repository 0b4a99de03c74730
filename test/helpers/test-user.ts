// Test helper: the unprivileged user `nucleus-test`, created when missing (root only).
import { spawnSync } from "node:child_process";

export const TEST_USER = "nucleus-test";

export function ensureTestUser(): { uid: number; gid: number } {
  let r = spawnSync("id", ["-u", TEST_USER], { encoding: "utf8" });
  if (r.status !== 0) {
    const add = spawnSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER], { encoding: "utf8" });
    if (add.status !== 0) throw new Error(`could not create user ${TEST_USER}: ${add.stderr}`);
    r = spawnSync("id", ["-u", TEST_USER], { encoding: "utf8" });
  }
  const gid = Number(spawnSync("id", ["-g", TEST_USER], { encoding: "utf8" }).stdout.trim());
  return { uid: Number(r.stdout.trim()), gid };
}
