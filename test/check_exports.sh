#!/usr/bin/env bash
# The exports test: a shared libuvkit exports what the headers promise and nothing else.
#
#   test/check_exports.sh BUILD_DIR    BUILD_DIR: a build with -Ddefault_library=shared
#
# Every defined dynamic symbol (nm -DC --defined-only) must be in the uvkit namespace (or its
# type info, vtable or thunk), and one of uvkit::detail only if test/exports.txt allows it (what
# inline code in the public headers calls). No std::, spdlog:: or fmt:: symbol. Prints a summary
# line last.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD=${1:?usage: $0 BUILD_DIR}
lib=$(find "$BUILD" -maxdepth 1 -name 'libuvkit.so.*' -type f | head -n 1)
[ -n "$lib" ] || { echo "check_exports: no libuvkit.so in $BUILD" >&2; exit 1; }

nm -DC --defined-only "$lib" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' | sort -u >"$BUILD/exports.txt"
python3 - "$BUILD/exports.txt" "$ROOT/test/exports.txt" <<'PY'
import re, sys
symbols = [l.rstrip('\n') for l in open(sys.argv[1]) if l.strip()]
allowed = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith('#')]
prefixes = ('uvkit::', 'typeinfo for uvkit::', 'typeinfo name for uvkit::', 'vtable for uvkit::',
            'non-virtual thunk to uvkit::')
bad = []
detail = 0
for s in symbols:
    if not s.startswith(prefixes):
        bad.append('outside uvkit: ' + s)
        continue
    if re.search(r'<[^(]*\b(spdlog|fmt)::', s.split('(', 1)[0]):
        bad.append('a uvkit template instantiated over spdlog/fmt: ' + s)
        continue
    name = s.split(' for ', 1)[-1].split(' to ', 1)[-1]
    if name.startswith('uvkit::detail::'):
        detail += 1
        if not any(re.match(re.escape(a) + r'($|[:(< ])', name) for a in allowed):
            bad.append('uvkit::detail not in test/exports.txt: ' + s)
for b in bad[:40]:
    print(b)
if bad:
    sys.exit(f'{len(bad)} of {len(symbols)} exported symbols break the rule')
if not any(s.startswith('uvkit::loop::run(') for s in symbols):
    sys.exit('uvkit::loop::run is not exported: the check would pass an empty library')
print(f'{len(symbols)} exported symbols, all uvkit (of them {detail} uvkit::detail, as test/exports.txt allows)')
PY
