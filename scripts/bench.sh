#!/usr/bin/env bash
# Benchmarks, each against its reference on this machine, in one run:
#   npm run bench                      every benchmark, full mode
#   npm run bench -- --quick           every benchmark, quick mode (about 2 minutes)
#   npm run bench -- NAME [--quick]    one of: redirects listeners dns scale failover flash-crowd elections handshakes
# Extra flags after the name go to that benchmark (e.g. `npm run bench -- redirects --profile`).
# Each benchmark prints one JSON line and a human summary; the JSON lines of the run are also
# collected in build/bench/results-<time>.jsonl. Nothing here is a test: slow machines only
# give smaller numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(redirects listeners dns scale failover flash-crowd elections handshakes)
names=()
extra=()
for a in "$@"; do
  case "$a" in
    -*) extra+=("$a") ;;
    *)
      if [ "${#names[@]}" -eq 0 ] || [ "${#extra[@]}" -eq 0 ]; then
        if printf '%s\n' "${all[@]}" | grep -qx "$a"; then names+=("$a"); continue; fi
      fi
      extra+=("$a") ;;
  esac
done
[ "${#names[@]}" -gt 0 ] || names=("${all[@]}")

bash scripts/install-deps.sh
# The references (nginx, wrk) are only needed here, not by the tests.
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing benchmark references: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -q
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
fi
# Daemons run compiled (never under the tsx CLI): build first.
npx tsc -p tsconfig.json

mkdir -p build/bench
out="build/bench/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "machine: nproc $(nproc), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
echo "versions: node $(node --version), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk", $2}'), etcd $(etcd --version | awk '/etcd Version/ {print $3}'), icecast $(dpkg-query -W -f='${Version}' icecast2 2>/dev/null), nsd $(dpkg-query -W -f='${Version}' nsd 2>/dev/null), ffmpeg $(dpkg-query -W -f='${Version}' ffmpeg 2>/dev/null)"
echo "command: npm run bench -- $*"
status=0
started=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for name in "${names[@]}"; do
  echo
  echo "== $name =="
  t0=$(date +%s)
  if node --import tsx "bench/$name.ts" "${extra[@]}" 2>&1 | tee "$log"; then
    # The first line of each benchmark's output is its JSON result.
    grep -m1 '^{' "$log" >>"$out" || true
    echo "($name: $(( $(date +%s) - t0 )) s)"
  else
    echo "($name FAILED after $(( $(date +%s) - t0 )) s)"
    status=1
  fi
done
echo
echo "total: $(( $(date +%s) - started )) s; results in $out"
exit "$status"
