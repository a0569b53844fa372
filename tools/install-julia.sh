#!/usr/bin/env bash
# Install Julia 1.5.3 from Debian 11 (bullseye) packages into a private prefix.
#
# Debian 12 ships no Julia, but bullseye's julia 1.5.3 is reachable through the
# same Debian mirror the machine already uses.  The packages are unpacked with
# `dpkg -x` into PREFIX; nothing is written outside PREFIX (apt runs with its own
# state and cache directories inside PREFIX, so the system's apt state is left
# alone).
#
# Usage: tools/install-julia.sh [PREFIX]
#   PREFIX defaults to $FEEDBACKALIGN_JULIA_PREFIX, else
#   ${XDG_CACHE_HOME:-$HOME/.cache}/feedbackalign-julia.
#
# Prints, as its last line, the path of a `julia` to run:
#   - a `julia` already on PATH, if there is one (nothing is installed);
#   - else PREFIX/bin/julia, a small wrapper that sets LD_LIBRARY_PATH.
# Idempotent: a second run finds PREFIX/bin/julia and only prints its path.
# Diagnostics go to stderr, so `JULIA=$(tools/install-julia.sh)` works.
set -euo pipefail

log() { echo "install-julia: $*" >&2; }
die() { echo "install-julia: error: $*" >&2; exit 1; }

PREFIX="${1:-${FEEDBACKALIGN_JULIA_PREFIX:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/feedbackalign-julia}}"
case "$PREFIX" in
  /|/usr|/usr/*|/bin|/bin/*|/lib|/lib/*|/etc|/etc/*|/var|/var/*|/sbin|/sbin/*)
    die "PREFIX '$PREFIX' is a system directory; choose a private one" ;;
  /*) ;;
  *) PREFIX="$(pwd)/$PREFIX" ;;
esac
WRAPPER="$PREFIX/bin/julia"

# 1. Anything usable already there?
if command -v julia >/dev/null 2>&1; then
  log "julia already on PATH"
  command -v julia
  exit 0
fi
# The check throws and catches an exception: that is what fails when the
# unwinder is the wrong one (see step 5).
# (The throw must come from a compiled function: errors thrown at top level
# unwind through no JIT frames and pass even with the wrong unwinder.)
probe='using Test, LinearAlgebra, Libdl, Random; f() = error("probe"); try f() catch end'
if [ -x "$WRAPPER" ] && ( "$WRAPPER" --startup-file=no -e "$probe" ) >/dev/null 2>&1; then
  echo "$WRAPPER"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this recipe needs a Debian system"
command -v dpkg >/dev/null 2>&1 || die "dpkg not found: this recipe needs a Debian system"
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 is supported (bullseye's julia build for x86_64)"

# 2. The Debian mirror this machine already uses (never a hard-coded host).
mirror=""
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
  # deb822 format: the first URIs line of a stanza that is not the security archive.
  mirror="$(awk '
    /^[[:space:]]*$/ { if (uri != "" && !sec) { print uri; exit } uri = ""; sec = 0; next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { if ($0 ~ /-security/) sec = 1 }
    END { if (uri != "" && !sec) print uri }' /etc/apt/sources.list.d/debian.sources | head -n1)"
fi
if [ -z "$mirror" ] && [ -r /etc/apt/sources.list ]; then
  # one-line format: "deb [opts] URI suite components"
  mirror="$(awk '$1 == "deb" && $0 !~ /security/ {
      for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)"
fi
[ -n "$mirror" ] || die "could not read a Debian mirror URI from /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
log "using Debian mirror $mirror (suite bullseye)"

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""
[ -r "$keyring" ] && signed="[signed-by=$keyring] "

# 3. Private apt state: a sources list with bullseye only, own lists and cache.
APTDIR="$PREFIX/apt"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs"
echo "deb ${signed}${mirror} bullseye main" > "$APTDIR/sources.list"
# An empty package status: the candidate of every package is then bullseye's,
# even where the system has a newer version of the same package installed.
: > "$APTDIR/status"
apt_opts=(
  -o "Dir::Etc::SourceList=$APTDIR/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$APTDIR/lists"
  -o "Dir::Cache=$APTDIR/cache"
  -o "Dir::State::status=$APTDIR/status"
  -o "Debug::NoLocking=1"
)
# As root apt drops to the _apt user for downloads, which cannot write into a
# private directory; download as the caller instead.
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o "APT::Sandbox::User=root")

log "apt-get update (private state in $APTDIR)"
apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update against $mirror bullseye failed"

pkgs=(julia julia-common libjulia1 libllvm9 libdsfmt-19937-1 libgit2-1.1
      libhttp-parser2.9 libmbedcrypto3 libmbedtls12 libmbedx509-0 libopenlibm3
      libutf8proc2 libffi7 libz3-4 libunwind8)
log "downloading ${pkgs[*]}"
( cd "$APTDIR/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}" >&2 ) \
  || die "apt-get download failed"

# 4. Unpack into the prefix (dpkg -x never runs maintainer scripts).
for p in "${pkgs[@]}"; do
  deb="$(ls "$APTDIR/debs/${p}"_*.deb 2>/dev/null | head -n1)"
  [ -n "$deb" ] || die "package $p was not downloaded"
  dpkg -x "$deb" "$PREFIX"
done

# 5. Six libraries julia needs are not in the packages above (the julia
#    package's links point at them by soname); point five of them at the
#    system's own copies.  The sixth, libunwind.so.8, comes from bullseye's
#    libunwind8 (downloaded above) instead: with bookworm's libunwind 1.6,
#    Julia 1.5 crashes with a segmentation fault on the first exception it
#    throws (in _ULx86_64_dwarf_search_unwind_table), so every test that
#    expects an error would kill the process.
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
[ -e "$LIBDIR/libunwind.so.8" ] || die "bullseye's libunwind.so.8 is missing from $LIBDIR"
case "$(readlink -f "$LIBDIR/libunwind.so.8")" in
  "$PREFIX"/*) ;;
  *) die "$LIBDIR/libunwind.so.8 does not point into the prefix" ;;
esac
for so in libcurl-gnutls.so.4 libgmp.so.10 libmpfr.so.6 libpcre2-8.so.0 libssh2.so.1; do
  target=""
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
    if [ -e "$d/$so" ]; then target="$d/$so"; break; fi
  done
  if [ -z "$target" ]; then
    target="$(ldconfig -p 2>/dev/null | awk -v so="$so" '$1 == so { print $NF; exit }')"
  fi
  [ -n "$target" ] || die "system library $so not found (install the Debian package that provides it)"
  # Replace whatever is there in the prefix (a dangling absolute link, usually)
  # in every directory of the prefix where julia looks for it.
  for d in "$LIBDIR" "$LIBDIR/julia"; do
    if [ -L "$d/$so" ] || [ -e "$d/$so" ] || [ "$d" = "$LIBDIR" ]; then
      mkdir -p "$d"
      ln -sfn "$target" "$d/$so"
    fi
  done
done

# 6. The wrapper.
mkdir -p "$PREFIX/bin"
cat > "$WRAPPER.tmp" <<EOF
#!/bin/sh
# Julia 1.5.3 unpacked from Debian bullseye packages by tools/install-julia.sh.
# Its private libraries live under the prefix, so the loader is told where.
PREFIX="$PREFIX"
LD_LIBRARY_PATH="\$PREFIX/usr/lib/x86_64-linux-gnu:\$PREFIX/usr/lib/x86_64-linux-gnu/julia\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "\$PREFIX/usr/bin/julia" "\$@"
EOF
chmod +x "$WRAPPER.tmp"
mv "$WRAPPER.tmp" "$WRAPPER"

# Free the space of the downloaded archives; the lists stay for a re-run.
rm -rf "$APTDIR/debs" "$APTDIR/cache"

"$WRAPPER" --startup-file=no -e "$probe" >&2 \
  || die "the unpacked julia does not start; see the messages above"
log "installed $("$WRAPPER" --startup-file=no -e 'print(VERSION)') in $PREFIX"
echo "$WRAPPER"
