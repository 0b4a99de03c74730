#!/usr/bin/env bash
# The test command: installs what is needed (scripts/setup.sh), type-checks,
# runs the whole suite, and ends with a line `N passed, N failed, N skipped`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || { echo "0 passed, 1 failed"; exit 1; }
npx tsc -p tsconfig.json --noEmit || { echo "type check failed"; echo "0 passed, 1 failed"; exit 1; }
# setup.sh has just built dist/: the CLI tests use it as it is. (Each of them rebuilding it, in
# parallel workers, would rewrite files under a CLI process another test is starting.)
export NUCLEUS_SKIP_BUILD=1
report=$(mktemp -t nucleus-vitest-XXXXXX.json)
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
rc=$?
node scripts/summary.mjs "$report" || rc=1
rm -f "$report"
exit $rc
