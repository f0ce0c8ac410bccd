#!/usr/bin/env bash
# npm run demo             a 3-node autoradio cluster in network namespaces on this machine, one
#                          mount (/stream.mp3) fed by a sine tone, and a port forward so players on
#                          this machine can listen (127.0.0.1:$AUTORADIO_DEMO_PORT, default 8080).
# npm run demo -- --down   stops everything the demo started (processes, namespaces, forwarders).
# npm run demo -- --status shows what runs.
# Needs root (network namespaces). Everything runs under one keeper process; see scripts/cluster.ts.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${AUTORADIO_DEMO_PORT:-8080}"
cluster() { node --import tsx scripts/cluster.ts "$@"; }

case "${1:-}" in
  --down) cluster down --label demo; exit 0 ;;
  --status) cluster status --label demo; exit 0 ;;
  "") ;;
  *) echo "usage: npm run demo [-- --down | --status]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "the demo needs root: it creates network namespaces" >&2
  exit 1
fi

bash scripts/install-deps.sh
npx tsc -p tsconfig.json

for p in "$port" $((port + 1)) $((port + 2)) $((port + 3)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "127.0.0.1:$p is in use; choose another base port with AUTORADIO_DEMO_PORT=..." >&2
    exit 1
  fi
done

cluster up --label demo --nodes 3 --mount /stream.mp3 --source --forward "$port"
