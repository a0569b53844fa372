#!/bin/sh
# The public header stands alone: it compiles with nothing before it as
# strict C11 (-pedantic, all warnings as errors), can be included twice, and
# compiles as C++11 (extern "C", no C-only constructs).  Exit 77 (skipped)
# for the C++ part when no C++ compiler is installed.
# Usage: check_header.sh HEADER CC [CXX]
set -eu
header=$1
cc=$2
cxx=${3:-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf '#include "%s"\n#include "%s"\nint main(void) { return fa_version_number() == FA_VERSION_NUMBER ? 0 : 1; }\n' \
    "$header" "$header" >"$tmp/twice.c"

set -x
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -Wstrict-prototypes \
    -Wmissing-prototypes -Wshadow -fsyntax-only -x c "$header"
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only "$tmp/twice.c"
{ set +x; } 2>/dev/null

if [ -z "$cxx" ] || ! command -v "$cxx" >/dev/null 2>&1; then
    echo "no C++ compiler: C++ part skipped"
    exit 77
fi
cp "$tmp/twice.c" "$tmp/twice.cpp"
set -x
"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -x c++ "$header"
"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only "$tmp/twice.cpp"
