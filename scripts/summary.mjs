// Prints the closing line `N passed, N failed, N skipped` from vitest's JSON report.
import { readFileSync } from "node:fs";
const file = process.argv[2];
let r;
try {
  r = JSON.parse(readFileSync(file, "utf8"));
} catch {
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
// A suite that failed to load counts as a failure even if it had no tests.
const failedSuites = (r.testResults ?? []).filter((t) => t.status === "failed" && (t.assertionResults ?? []).length === 0).length;
console.log(`${r.numPassedTests} passed, ${r.numFailedTests + failedSuites} failed, ${skipped} skipped`);
