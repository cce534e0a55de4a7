#!/usr/bin/env bash
# The consumer test: uvkit used by another project, the two ways the README documents.
#
#   test/run_consumer.sh subproject   test/consumer/ (copied to a temporary directory) takes this
#                                     checkout as subprojects/uvkit and resolves dependency('uvkit')
#                                     through uvkit's meson.override_dependency(); uvkit's own tests
#                                     and examples must not be part of that build.
#   test/run_consumer.sh pkgconfig    `meson install` uvkit into a temporary prefix and compile
#                                     test/consumer/main.cpp with `pkg-config --cflags --libs uvkit`.
#
#   test/run_consumer.sh core BUILD   BUILD: a configured build with -Dcoroutines=false (the `core`
#                                     stage's). `meson install --destdir` it into a temporary DESTDIR:
#                                     no co/ header and no co.hpp installed, the installed uvkit.pc
#                                     says -DUVKIT_NO_COROUTINES and is usable through
#                                     PKG_CONFIG_SYSROOT_DIR, and main.cpp compiles and runs against
#                                     the installed core alone.
#
#   test/run_consumer.sh strict       a user's stricter flags (STRICT_FLAGS below) over every public
#                                     header, each included alone and all together, with g++ and
#                                     clang++: no warning may come from uvkit's headers.
#
# Both build offline (--wrap-mode=nodownload), run the program and print its line last.
# Called by `./dev test`; set KEEP_TMP=1 to keep the temporary directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
CONSUMER=$ROOT/test/consumer

TMP=$(mktemp -d "${TMPDIR:-/tmp}/uvkit-consumer.XXXXXX")
cleanup() {
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }
die() {
    printf 'run_consumer: %s\n' "$*" >&2
    exit 1
}

subproject() {
    local src=$TMP/consumer build=$TMP/consumer/build
    cp -r "$CONSUMER/." "$src/"
    mkdir -p "$src/subprojects"
    ln -s "$ROOT" "$src/subprojects/uvkit"

    # --force-fallback-for: never an installed uvkit; the subproject's override must answer.
    say "+ meson setup (uvkit as a subproject)"
    meson setup "$build" "$src" --wrap-mode=nodownload --force-fallback-for=uvkit -Dwerror=true
    grep -q 'Dependency uvkit found: YES .*(overridden)' "$build/meson-logs/meson-log.txt" ||
        die "dependency('uvkit') was not resolved through uvkit's meson.override_dependency()"

    # uvkit's is_subproject logic: only the library may be built, no tests, no examples.
    say "+ checking the targets"
    meson introspect --targets "$build" | python3 -c '
import json, sys
targets = json.load(sys.stdin)
for t in targets:
    print("target:", t["name"], "from", t["defined_in"])
bad = [t["name"] for t in targets
       if "/subprojects/uvkit/" in t["defined_in"] and t["name"] != "uvkit"]
if bad:
    sys.exit("uvkit built more than its library as a subproject: " + ", ".join(bad))
'
    say "+ ninja"
    ninja -C "$build"
    say "+ $build/consumer"
    "$build/consumer"
}

pkgconfig() {
    local build=$TMP/uvkit-build prefix=$TMP/prefix
    say "+ meson setup + install uvkit into $prefix"
    meson setup "$build" "$ROOT" --prefix="$prefix" --wrap-mode=nodownload -Dtests=disabled -Dexamples=false -Dbench=false
    meson install -C "$build"

    export PKG_CONFIG_PATH=$prefix/lib/x86_64-linux-gnu/pkgconfig:$prefix/lib/pkgconfig
    local pc
    pc=$(pkg-config --path uvkit) || die "pkg-config does not find the installed uvkit.pc"
    say "+ $pc:"
    cat "$pc"
    grep -Eq '^Requires:.*\blibuv\b' "$pc" || die "uvkit.pc does not name libuv in Requires"
    [ "$(pkg-config --modversion uvkit)" = "$(meson introspect --projectinfo "$build" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')" ] ||
        die "uvkit.pc's version is not the project's"

    say "+ g++ -std=c++20 main.cpp \$(pkg-config --cflags --libs uvkit)"
    # shellcheck disable=SC2046  # pkg-config's output is a list of words
    g++ -std=c++20 -Wall -Wextra -Werror "$CONSUMER/main.cpp" -o "$TMP/consumer" $(pkg-config --cflags --libs uvkit)
    say "+ $TMP/consumer"
    "$TMP/consumer"
}

core() {
    local build=${1:?usage: $0 core BUILD_DIR} dest=$TMP/destdir
    [ -f "$build/build.ninja" ] || die "$build is not a configured build"
    grep -q -- "-DUVKIT_NO_COROUTINES" "$build/build.ninja" || die "$build is not built with -Dcoroutines=false"
    say "+ meson install -C $build --destdir $dest"
    meson install -C "$build" --destdir "$dest"

    local prefix includedir libdir
    read -r prefix includedir libdir < <(meson introspect --buildoptions "$build" | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["includedir"], o["libdir"])')
    # Relative includedir/libdir are below the prefix; absolute ones stand alone.
    case $includedir in /*) ;; *) includedir=$prefix/$includedir ;; esac
    case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
    local inc=$dest$includedir/uvkit
    [ -f "$inc/uvkit.hpp" ] || die "no uvkit/uvkit.hpp installed under $dest$includedir"
    [ ! -e "$inc/co" ] || die "the core install has the coroutine headers: $inc/co"
    [ ! -e "$inc/co.hpp" ] || die "the core install has $inc/co.hpp"
    say "+ installed: $(cd "$dest" && find . -type f | wc -l) files, no uvkit/co/, no uvkit/co.hpp"

    # The DESTDIR way of using an installed .pc: pkg-config puts the sysroot in front of its paths.
    export PKG_CONFIG_SYSROOT_DIR=$dest
    export PKG_CONFIG_PATH=$dest$libdir/pkgconfig
    local pc
    pc=$(pkg-config --path uvkit) || die "pkg-config does not find the installed uvkit.pc"
    case $pc in "$dest"/*) ;; *) die "pkg-config found $pc, not the one in $dest" ;; esac
    say "+ $pc:"
    cat "$pc"
    pkg-config --cflags uvkit | grep -q -- "-DUVKIT_NO_COROUTINES" ||
        die "uvkit.pc's Cflags do not say -DUVKIT_NO_COROUTINES"
    pkg-config --cflags uvkit | grep -q -- "-I$dest$includedir" ||
        die "uvkit.pc's Cflags do not point into $dest (is PKG_CONFIG_SYSROOT_DIR honoured?)"

    say "+ g++ -std=c++20 main.cpp \$(pkg-config --cflags --libs uvkit) (the installed core)"
    # shellcheck disable=SC2046  # pkg-config's output is a list of words
    g++ -std=c++20 -Wall -Wextra -Werror "$CONSUMER/main.cpp" -o "$TMP/consumer" $(pkg-config --cflags --libs uvkit)
    say "+ $TMP/consumer"
    "$TMP/consumer"
}

STRICT_FLAGS=(-std=c++20 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion
    -Wold-style-cast -Wnon-virtual-dtor -Wcast-qual -Woverloaded-virtual)

strict() {
    local headers=() h
    mapfile -t headers < <(cd "$ROOT/include" && find uvkit -name '*.hpp' | sort)
    [ "${#headers[@]}" -gt 0 ] || die "no public headers found"
    {
        for h in "${headers[@]}"; do printf '#include <%s>\n' "$h"; done
        printf 'int main() { uvkit::loop l; uvkit::timer t{l}; t.start(std::chrono::milliseconds(1), [] {}); l.run(); }\n'
    } >"$TMP/all.cpp"
    local cxx n=0
    for cxx in g++ clang++; do
        command -v "$cxx" >/dev/null 2>&1 || die "$cxx is not installed"
        say "+ $cxx ${STRICT_FLAGS[*]}: ${#headers[@]} headers alone, then all together"
        for h in "${headers[@]}"; do
            printf '#include <%s>\n' "$h" >"$TMP/one.cpp"
            "$cxx" "${STRICT_FLAGS[@]}" -I"$ROOT/include" -fsyntax-only "$TMP/one.cpp" || die "$cxx: $h warns"
            n=$((n + 1))
        done
        "$cxx" "${STRICT_FLAGS[@]}" -I"$ROOT/include" -c "$TMP/all.cpp" -o "$TMP/all-$cxx.o" ||
            die "$cxx: the headers together warn"
        n=$((n + 1))
    done
    say "strict flags: $n compilations of ${#headers[@]} public headers, no warning"
}

case ${1:-} in
    subproject) subproject ;;
    pkgconfig) pkgconfig ;;
    strict) strict ;;
    core) core "${2:-}" ;;
    *) die "usage: $0 subproject|pkgconfig|strict|core BUILD_DIR" ;;
esac
