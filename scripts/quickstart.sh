#!/usr/bin/env bash
# The quick start: install what is needed (scripts/setup.sh), then run the
# gateway with examples/nucleus.toml and drive it with an MCP client so you can
# see isolated servers answer (examples/demo.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node examples/demo.mjs
