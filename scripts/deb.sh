#!/usr/bin/env bash
# Builds the Debian packages (autoradio-common, autoradio-server, autoradio-client) into
# build/deb/ and checks them with lintian. Runs on Debian 12 or 13 as root (or with the build
# dependencies already installed). The build happens in a copy of the sources under
# build/deb/src, so the working tree's node_modules and dist are never touched; npm fetches
# from the registry only what its cache lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/deb

if ! command -v dpkg >/dev/null 2>&1; then
  echo "deb: this builds Debian packages and needs a Debian system (dpkg not found)" >&2
  exit 1
fi

# The package version comes from debian/changelog; it must follow package.json's.
pkg_version=$(node -p 'require("./package.json").version')
deb_version=$(dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null || sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)
if [ "${deb_version%%-*}" != "$pkg_version" ]; then
  echo "deb: debian/changelog says $deb_version but package.json says $pkg_version: add a changelog entry (dch -v $pkg_version)" >&2
  exit 1
fi

install_debs() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "deb: missing Debian packages: $* (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "deb: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@"
}

tools=()
command -v dpkg-buildpackage >/dev/null 2>&1 || tools+=(dpkg-dev)
command -v dh >/dev/null 2>&1 || tools+=(debhelper)
command -v lintian >/dev/null 2>&1 || tools+=(lintian)
[ "${#tools[@]}" -eq 0 ] || install_debs "${tools[@]}"

# Build dependencies from debian/control. Node.js 20 must come from the machine's sources: on
# Debian 12 that is NodeSource's node_20.x (see debian/autoradio-server.README.Debian).
if ! dpkg-checkbuilddeps debian/control >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { dpkg-checkbuilddeps debian/control; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 build-dep -y -q --no-install-recommends "$root" || true
  if ! dpkg-checkbuilddeps debian/control; then
    echo "deb: build dependencies missing; Node.js >= 20 on Debian 12 comes from deb.nodesource.com (node_20.x)" >&2
    exit 1
  fi
fi

rm -rf "$out"
src=$out/src/autoradio-$pkg_version
mkdir -p "$src"
# Tracked and new (not ignored) files of what the build needs, so stale local build products
# never leak into the package.
parts=(package.json package-lock.json tsconfig.json src bin debian README.md LICENSE COPYING)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard -- "${parts[@]}"
else
  for p in "${parts[@]}"; do [ ! -e "$p" ] || find "$p" -type f -print0; done
fi | tar --null -T - -cf - | tar -xf - -C "$src"

(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign)
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
rm -rf "$out/src"

echo "deb: built:"
ls -l "$out"/*.deb
# Errors fail the build; warnings are printed for the packager (and kept for the package test).
lintian --fail-on none --tag-display-limit 0 "$out"/*.changes | tee "$out/lintian.txt"
if grep -q '^E: ' "$out/lintian.txt"; then
  echo "deb: lintian found errors" >&2
  exit 1
fi
