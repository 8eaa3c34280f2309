#!/bin/sh
# Unpack Debian's Orthanc and its DICOMweb plugin (and the libraries they need that this machine lacks) into a
# folder, without installing anything: apt-get download + dpkg -x. Usage: sh tests/fetch_orthanc.sh .cache/orthanc
# The tests run DEST/root/usr/sbin/Orthanc with LD_LIBRARY_PATH and DCMDICTPATH pointing into DEST/root; the
# serving test loads DEST/root/usr/share/orthanc/plugins/libOrthancDicomWeb.so.
set -eu
DEST=${1:?usage: fetch_orthanc.sh DEST}
if [ -x "$DEST/root/usr/sbin/Orthanc" ] && ls "$DEST"/root/usr/share/orthanc/plugins*/libOrthancDicomWeb.so \
   >/dev/null 2>&1; then exit 0; fi
command -v apt-get >/dev/null || { echo "fetch_orthanc: apt-get is needed (Debian/Ubuntu)" >&2; exit 1; }
if ! apt-cache policy orthanc | grep -q 'Candidate: [0-9]'; then
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo ); $SUDO apt-get update -qq
fi
mkdir -p "$DEST/debs" "$DEST/root"
# orthanc, its DICOMweb plugin, and every library package of their dependency closure not installed here
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
       --no-enhances orthanc orthanc-dicomweb | grep '^[a-z0-9]' | sort -u)
need="orthanc orthanc-dicomweb"
for p in $pkgs; do
  case "$p" in lib*) dpkg -s "$p" >/dev/null 2>&1 || need="$need $p" ;; esac
done
cd "$DEST/debs"
apt-get download $need >/dev/null 2>&1 || apt-get download $need
for f in *.deb; do dpkg -x "$f" ../root; done
test -x ../root/usr/sbin/Orthanc
echo "fetch_orthanc: unpacked $(ls | wc -l) packages into $DEST/root"
