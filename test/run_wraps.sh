#!/usr/bin/env bash
# The wraps test: what can be proven about subprojects/*.wrap without a network.
#
#   test/run_wraps.sh LIBUV_SRC    LIBUV_SRC: a libuv source tree (./dev passes Debian's, from
#                                  libuv_source)
#
# 1. Every wrap parses with Meson's own parser (the installed Meson, 1.0.1) and has every key a
#    [wrap-file] needs (directory, source_url, source_filename, source_hash as 64 hex digits; a
#    patch_filename needs patch_url and patch_hash; a patch_directory must exist).
# 2. Meson itself, in a throwaway project per wrap with --wrap-mode=nodownload and a packagecache
#    holding a stand-in file under the wrap's source_filename, reads the wrap up to its hash check:
#    it must refuse the stand-in with "Incorrect hash", expecting exactly the wrap's source_hash.
# 3. The libuv fallback: a copy of this tree whose subprojects/libuv is LIBUV_SRC, configured with
#    --force-fallback-for=libuv and the system's libuv hidden from pkg-config and CMake, builds
#    examples/demo through Meson's cmake module; the demo has libuv linked in (no libuv.so in
#    its needed libraries, uv_run defined in it) and runs.
# Prints its last check last. Set KEEP_TMP=1 to keep the temporary directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
LIBUV_SRC=${1:?usage: $0 LIBUV_SRC}
[ -f "$LIBUV_SRC/CMakeLists.txt" ] || { echo "run_wraps: no CMakeLists.txt in $LIBUV_SRC" >&2; exit 1; }
LIBUV_SRC=$(cd "$LIBUV_SRC" && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/uvkit-wraps.XXXXXX")
cleanup() {
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }
die() {
    printf 'run_wraps: %s\n' "$*" >&2
    exit 1
}

# Meson's own Python package, as the installed meson runs it.
MESON_PY=$(head -n 1 "$(command -v meson)" | sed -n 's/^#! *//p')
[ -n "$MESON_PY" ] || MESON_PY=python3

say "+ 1. parsing every wrap with mesonbuild.wrap"
"$MESON_PY" - "$ROOT"/subprojects/*.wrap <<'PY'
import os, re, sys
from mesonbuild.wrap.wrap import PackageDefinition
for path in sys.argv[1:]:
    w = PackageDefinition(path)
    name = os.path.basename(path)
    if w.type != 'file':
        sys.exit(f'{name}: [wrap-{w.type}], expected [wrap-file]')
    for key in ('directory', 'source_url', 'source_filename', 'source_hash'):
        w.get(key)  # raises "Missing key" like Meson's resolver does
    if not re.fullmatch(r'[0-9a-f]{64}', w.get('source_hash')):
        sys.exit(f'{name}: source_hash is not a sha256')
    if not w.get('source_url').startswith('https://'):
        sys.exit(f'{name}: source_url is not https')
    if 'patch_filename' in w.values:
        w.get('patch_url')
        if not re.fullmatch(r'[0-9a-f]{64}', w.get('patch_hash')):
            sys.exit(f'{name}: patch_hash is not a sha256')
    if 'patch_directory' in w.values:
        d = os.path.join(w.filesdir, w.values['patch_directory'])
        if not os.path.isfile(os.path.join(d, 'meson.build')):
            sys.exit(f'{name}: patch_directory {d} has no meson.build')
    print(f'{name}: [wrap-file] {w.get("directory")}, sha256 {w.get("source_hash")[:12]}..., '
          f'dependency names {sorted(w.provided_deps)}')
PY

say "+ 2. Meson 1.0.1 reads each wrap up to its hash check"
for wrap in "$ROOT"/subprojects/*.wrap; do
    name=$(basename "$wrap" .wrap)
    proj=$TMP/parse-$name
    mkdir -p "$proj/subprojects/packagecache"
    cp "$wrap" "$proj/subprojects/"
    [ -d "$ROOT/subprojects/packagefiles" ] && cp -r "$ROOT/subprojects/packagefiles" "$proj/subprojects/"
    printf "project('parse_%s', 'c')\nsubproject('%s')\n" "$name" "$name" >"$proj/meson.build"
    file=$(sed -n 's/^source_filename *= *//p' "$wrap")
    hash=$(sed -n 's/^source_hash *= *//p' "$wrap")
    echo "not the tarball" >"$proj/subprojects/packagecache/$file"
    if meson setup "$proj/build" "$proj" --wrap-mode=nodownload >"$proj/setup.log" 2>&1; then
        die "$name.wrap: meson accepted a stand-in tarball"
    fi
    grep -A1 'Incorrect hash for source' "$proj/build/meson-logs/meson-log.txt" "$proj/setup.log" 2>/dev/null |
        grep -q "$hash expected" || { cat "$proj/setup.log"; die "$name.wrap: Meson did not get to the hash check"; }
    say "$name.wrap: Meson resolved it to packagecache/$file and checked sha256 $hash"
done

say "+ 3. the libuv fallback from $LIBUV_SRC, the system's libuv hidden"
copy=$TMP/uvkit
mkdir -p "$copy"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy" 2>/dev/null) ||
    die "copying the tree failed"
rm -f "$copy/subprojects/libuv.wrap"
ln -s "$LIBUV_SRC" "$copy/subprojects/libuv"
mkdir -p "$TMP/empty-pkgconfig"
# pkg-config sees no libuv.pc (Debian ships no CMake config for libuv).
export PKG_CONFIG_LIBDIR=$TMP/empty-pkgconfig:/usr/share/pkgconfig
PKG_CONFIG_LIBDIR=$PKG_CONFIG_LIBDIR:$(pkg-config --variable pc_path pkg-config | tr ':' '\n' | grep -v -e '^$' |
    while read -r d; do [ -e "$d/libuv.pc" ] || printf '%s:' "$d"; done)
pkg-config --exists libuv && die "the system's libuv is not hidden from pkg-config"
build=$copy/build
meson setup "$build" "$copy" --wrap-mode=nodownload --force-fallback-for=libuv -Dwerror=true \
    -Dtests=disabled -Dbench=false -Dlogging=disabled
grep -Eq "Run-time dependency libuv found: YES" "$build/meson-logs/meson-log.txt" &&
    die "dependency('libuv') was looked up in the system despite --force-fallback-for=libuv"
grep -q "CMake project: libuv\|Configuring the build directory with CMake\|subprojects/libuv" \
    "$build/meson-logs/meson-log.txt" || die "the cmake subproject libuv was not configured"
say "+ ninja examples/demo"
ninja -C "$build" examples/demo
demo=$build/examples/demo
ldd "$demo" >"$TMP/ldd.txt"
nm "$demo" >"$TMP/nm.txt"
grep -q 'libuv\.so' "$TMP/ldd.txt" && die "the demo links the system's libuv.so"
grep -Eq ' T uv_run$' "$TMP/nm.txt" || die "uv_run is not defined in the demo (libuv not linked in)"
say "+ $demo"
"$demo" >"$TMP/demo.out"
tail -n 2 "$TMP/demo.out"
say "libuv fallback: uvkit built and linked against $(basename "$LIBUV_SRC") through Meson's cmake module, demo ran"
