#!/usr/bin/env bash
# A sysroot holding libtirpc for s390x, so that test/conformance/run.ts can link the C peer
# statically for big-endian s390x (with gcc-s390x-linux-gnu) and run it under qemu-s390x-static.
#
#   test/conformance/s390x-sysroot.sh DIR
#
# 1. dpkg learns the s390x architecture (`dpkg --add-architecture s390x`, then `apt-get update`)
#    unless it already knows it; that step needs root.
# 2. `apt-get download libtirpc-dev:s390x libtirpc3:s390x` into DIR.debs (retried once after an
#    `apt-get update` when the lists do not know the packages yet).
# 3. `dpkg -x` of each into DIR; DIR/.complete marks a finished sysroot, so a second run does
#    nothing. Only libtirpc.a is linked (its XDR objects need nothing but libc).
#
# On failure: one line on stderr naming what is missing, exit 1.
set -euo pipefail

dir=${1:?usage: s390x-sysroot.sh DIR}
PACKAGES=(libtirpc-dev:s390x libtirpc3:s390x)
LIBRARY=usr/lib/s390x-linux-gnu/libtirpc.a

fail() {
  echo "s390x-sysroot: $*" >&2
  exit 1
}

[ -f "$dir/.complete" ] && [ -f "$dir/$LIBRARY" ] && exit 0

command -v dpkg >/dev/null 2>&1 || fail "dpkg not found: the sysroot is made from Debian's s390x packages"
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found"
root=false
[ "$(id -u)" -eq 0 ] && root=true

if ! dpkg --print-foreign-architectures | grep -qx s390x; then
  $root || fail "dpkg does not know the s390x architecture and we are not root (as root: dpkg --add-architecture s390x && apt-get update)"
  dpkg --add-architecture s390x || fail "dpkg --add-architecture s390x failed"
  apt-get update -q >&2 || fail "apt-get update failed after adding the s390x architecture"
fi

debs="$dir.debs"
rm -rf "$debs"
mkdir -p "$debs"
# As root, apt's sandbox user cannot write here; downloading as root is what we want anyway.
download() { (cd "$debs" && apt-get -q -o APT::Sandbox::User=root download "${PACKAGES[@]}") >&2; }
if ! download; then
  $root || fail "apt-get download ${PACKAGES[*]} failed (the package lists may need 'apt-get update' as root)"
  apt-get update -q >&2 || fail "apt-get update failed"
  download || fail "apt-get download ${PACKAGES[*]} failed even after apt-get update"
fi

rm -rf "$dir"
mkdir -p "$dir"
for deb in "$debs"/*.deb; do dpkg -x "$deb" "$dir" || fail "dpkg -x $deb failed"; done
[ -f "$dir/$LIBRARY" ] || fail "the packages did not provide $LIBRARY"
touch "$dir/.complete"
echo "s390x-sysroot: libtirpc for s390x unpacked into $dir" >&2
