#!/usr/bin/env bash
# Installs the Debian 12 packages udax needs to build, test and benchmark.
# Idempotent; run as root (or with sudo available).
set -euo pipefail
PKGS=(
  g++ cmake ninja-build pkg-config
  libpmem2-dev            # device mapping and persistence (PMDK)
  libisal-dev             # crc32c (ISA-L)
  libfuse3-dev fuse3      # the FUSE mount
  libcli11-dev            # CLI argument parsing
  nlohmann-json3-dev      # --json output
  libgtest-dev libgmock-dev libbenchmark-dev
  xfsprogs                # kernel baseline in `udax bench` (XFS on a loop device)
  python3                 # JSON checks in the CLI tests
  clang libclang-rt-14-dev  # the libFuzzer target (scripts/fuzz.sh)
)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "install-deps: all ${#PKGS[@]} packages present"
