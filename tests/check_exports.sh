#!/bin/sh
# The shared library exports exactly the functions of the public header:
# every dynamic symbol it defines starts with fa_ and is declared in
# include/feedbackalign.h, and every function declared there is exported.
# Hidden visibility is what keeps the internal helpers (fa_gemm, fa_fail...)
# out of the ABI; a missing export would break Julia's ccall at run time.
# Usage: check_exports.sh LIBRARY NM HEADER
set -eu
lib=$1
nm=$2
header=$3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols of the library (code and data of any binding).
"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' |
    sort -u >"$tmp/exported"
# The functions of the header: every declaration starts with FA_API and has
# the function's name right before its opening parenthesis.
grep '^FA_API ' "$header" | sed -e 's/(.*//' -e 's/.*[ *]//' |
    sort -u >"$tmp/declared"

status=0
if [ ! -s "$tmp/declared" ]; then
    echo "no FA_API functions found in $header" >&2
    exit 1
fi
if [ ! -s "$tmp/exported" ]; then
    echo "no exported symbols found in $lib" >&2
    exit 1
fi
bad=$(grep -v '^fa_' "$tmp/exported" || true)
if [ -n "$bad" ]; then
    echo "exported symbols without the fa_ prefix:" >&2
    echo "$bad" >&2
    status=1
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
if [ -n "$extra" ]; then
    echo "exported but not in the public header:" >&2
    echo "$extra" >&2
    status=1
fi
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$missing" ]; then
    echo "declared in the header but not exported:" >&2
    echo "$missing" >&2
    status=1
fi
echo "$(wc -l <"$tmp/declared") header functions, $(wc -l <"$tmp/exported") exported symbols"
exit $status
