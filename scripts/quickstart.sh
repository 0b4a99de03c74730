#!/usr/bin/env bash
# The quick start: install what is needed (scripts/setup.sh), then run the
# gateway with examples/nucleus.toml and drive it with an MCP client so you can
# see isolated servers answer (examples/demo.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v bwrap >/dev/null; then
  echo "quickstart: bubblewrap is not installed, and the demo's servers run in bubblewrap sandboxes." >&2
  echo "quickstart: run:  sudo apt-get install -y bubblewrap   then run this script again." >&2
  exit 1
fi
exec node examples/demo.mjs
