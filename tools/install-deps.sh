#!/usr/bin/env bash
# Install the Debian packages the build, the tests and the demo need, if any is
# missing.  Idempotent: does nothing (and needs no network) when all are there.
# Usage: tools/install-deps.sh   (as root, or with sudo available)
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc g++ libopenblas-dev check zlib1g-dev
      valgrind gnuplot-nox python3-numpy python3-torch dataset-fashion-mnist
      clang libclang-rt-14-dev libopenmpi-dev openmpi-bin)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
