#!/bin/bash
#
# Build the OPTE IPS package on Helios from what `cargo xtask build` made:
#   pkg/illumos/build.sh            -> pkg/illumos/packages/repo/opte-VERSION.p5p
# VERSION is 0.API_VERSION.COMMITS-HELIOS_RELEASE.TAG (TAG defaults to 0). With
# RELEASE_ONLY set, the debug module (xde.dbg) is left out.
#
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")"
top=$(cd ../.. && pwd)
publisher=${PUBLISHER:-helios}
. /etc/os-release
helios_release=${HELIOS_RELEASE:-${VERSION_ID:-0}}
api=$(awk '/pub const API_VERSION: u64 =/ { gsub(";", "", $6); print $6 }' "$top/opte-api/src/cmd.rs")
commits=$(git -C "$top" rev-list --count HEAD)
version="0.$api.$commits-$helios_release.${TAG:-0}"

rm -rf proto packages manifests
mkdir -p proto/opt/oxide/opte/bin proto/opt/oxide/opte/dtrace proto/kernel/drv/amd64 \
    proto/usr/lib/devfsadm/linkmod packages manifests
cp "$top/target/release/opteadm" proto/opt/oxide/opte/bin/
cp "$top/target/kmod/xde" proto/kernel/drv/amd64/xde
# The debug module and the devfsadm plugin ship when they were built.
dbg="$top/target/kmod/xde.dbg"
if [ -z "${RELEASE_ONLY:-}" ] && [ -f "$dbg" ]; then
    cp "$dbg" proto/kernel/drv/amd64/xde.dbg
else
    RELEASE_ONLY=1
fi
cp "$top/xde/xde.conf" proto/kernel/drv/
link="$top/target/xde-link/i686-unknown-illumos/release/libxde_link.so"
[ -f "$link" ] && cp "$link" proto/usr/lib/devfsadm/linkmod/SUNW_xde_link.so
cp -r "$top/dtrace/"* proto/opt/oxide/opte/dtrace/
sed -e "s/%VERSION%/$version/" -e "s/%PUBLISHER%/$publisher/" opte.template.p5m \
    > manifests/opte.p5m
# Every D script and header ships beside opte-trace.
(cd proto && find opt/oxide/opte/dtrace -type f ! -name opte-trace | sort | while read -r f; do
    echo "file path=$f owner=root group=bin mode=0644"
done; find opt/oxide/opte/dtrace -mindepth 1 -type d | sort | while read -r d; do
    echo "dir path=$d owner=root group=bin mode=0755"
done) >> manifests/opte.p5m
[ -n "${RELEASE_ONLY:-}" ] && sed -i '/xde.dbg/d' manifests/opte.p5m
[ -f "$link" ] || sed -i '/SUNW_xde_link/d' manifests/opte.p5m
pkgdepend generate -d proto manifests/opte.p5m > manifests/opte.dep
pkgdepend resolve -d manifests manifests/opte.dep
cat manifests/opte.p5m manifests/opte.dep.res > manifests/opte.final.p5m
pkgrepo create packages/repo
pkgrepo add-publisher -s packages/repo "$publisher"
pkgsend publish -d proto -s packages/repo manifests/opte.final.p5m
pkgrecv -a -d "packages/repo/opte-$version.p5p" -s packages/repo -v -m latest '*'
echo "packages/repo/opte-$version.p5p"
