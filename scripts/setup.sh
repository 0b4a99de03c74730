#!/usr/bin/env bash
# Installs what Nucleus needs on Debian/Ubuntu: npm dependencies, the build, and
# system packages (bubblewrap; with --dev also QEMU and the test tools). As root
# it uses apt-get; otherwise it prints the exact command to run and continues
# with what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages. What running the gateway needs (bubblewrap: the default
# sandbox), and with --dev what the whole test suite needs besides:
# qemu-system-x86 + busybox-static + cpio + xz-utils/zstd (to unpack the kernel): the microVM backends;
# socat: the vsock bridge in Firecracker guests; e2fsprogs: read-only ext4 images of granted paths (Firecracker);
# the kernel (linux-image-amd64) is fetched by `nucleus image build` with `apt-get download`, not installed.
# dnsmasq-base + iproute2: the egress tests' local DNS and test hosts.
# util-linux (setpriv, for run_as) and perl-base (pins below port 1024 under bubblewrap, docs/egress.md):
# both Essential on Debian and Ubuntu, so normally already there.
# openssl + curl: the egress tests' self-signed HTTPS target and a real proxy-honouring client.
PKGS=(bubblewrap util-linux perl-base)
if [ "${1:-}" = "--dev" ]; then
  PKGS+=(qemu-system-x86 busybox-static cpio xz-utils zstd socat e2fsprogs dnsmasq-base iproute2 openssl curl)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || apt-get update
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: run:  sudo apt-get install -y ${missing[*]}" >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
echo "setup: building (tsc)" >&2
npm run --silent build >&2
