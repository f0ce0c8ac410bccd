#!/usr/bin/env bash
# Installs what the tests and the demo need on a Debian machine: the Debian packages of the
# real components (only when missing) and the exact npm packages from the lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
check() { command -v "$1" >/dev/null 2>&1 || need_debs+=("$2"); }
# For packages that bring plugins rather than a command.
check_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || need_debs+=("$1"); }
check etcd etcd-server
check etcdctl etcd-client
check icecast2 icecast2
check liquidsoap liquidsoap
check ffmpeg ffmpeg
check ffprobe ffmpeg
check curl curl
check ezstream ezstream
check dig bind9-dnsutils
check ip iproute2
check iptables iptables
check setpriv util-linux
check nsd nsd
check dnsperf dnsperf
# Checking the shipped alert rules (docs/monitoring).
check promtool prometheus
check chromium chromium
# HTTPS by ACME end to end (test/integration/acme.test.ts): a local CA, and a TLS player.
check pebble pebble
check mpv mpv
# The players of test/integration/listener-clients.test.ts: VLC and GStreamer with their HTTP
# sources and MP3 decoders.
check cvlc vlc-bin
check_pkg vlc-plugin-base
check gst-launch-1.0 gstreamer1.0-tools
check_pkg gstreamer1.0-plugins-good
check_pkg gstreamer1.0-plugins-base
check pkill procps
# Building and checking the Debian packages (test/package).
check debootstrap debootstrap
# Booting the Debian 13 root with systemd as PID 1 (test/package/systemd-boot.test.ts).
check systemd-nspawn systemd-container
check nsenter util-linux
check lintian lintian
check dh debhelper
check help2man help2man
check dpkg-buildpackage dpkg-dev

if [ "${#need_debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need_debs[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need_debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need_debs[@]}"
fi

# The lockfile pins exact versions that run on Node 20; only reinstall when it changed.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
