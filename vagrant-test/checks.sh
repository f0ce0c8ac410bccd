#!/usr/bin/env bash
# Check primitives run on a VM (as root), driven by run-checks.sh on the host. Each mirrors a
# helper of the netns harness (test/support/cluster.ts, test/cluster/clients.ts), so both run
# the same scenarios against the same flags.
set -euo pipefail
. /etc/default/autoradio
ip=$AUTORADIO_IP
state=/run/autoradio-checks
mkdir -p "$state"
etcdctl_() { etcdctl --endpoints "${ENDPOINTS:-http://$ip:2379}" --dial-timeout=1s --command-timeout=3s "$@"; }
iface() { ip -o -4 addr show | awk -v a="$ip" 'index($4, a"/") == 1 { print $2 }'; }

cmd=${1:?command}; shift
case "$cmd" in
  wait-ready) # redirectord answers and etcd is healthy (Cluster.waitDaemonsReady)
    for _ in $(seq 1 120); do
      if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$ip/status.json")" = 200 ] &&
        etcdctl_ endpoint health >/dev/null 2>&1; then exit 0; fi
      sleep 0.5
    done
    echo "$(hostname): not ready" >&2; exit 1 ;;
  master) # Cluster.master(): lowest create revision under the election prefix
    etcdctl_ get --prefix /autoradio/v1/election/master/ -w json --consistency="${CONSISTENCY:-l}" |
      jq -r '[.kvs // [] | .[]] | sort_by(.create_revision) | .[0].value // empty | @base64d | fromjson | .name' ;;
  etcd-writable)
    etcdctl_ --command-timeout=500ms put /autoradio-harness/probe "$(date +%s)" >/dev/null ;;
  create-mount) # prints "username password"
    radioctl --json --etcd-urls "${ENDPOINTS:-http://$ip:2379}" create-mount "$1" | jq -r '.username + " " + .password' ;;
  radioctl)
    radioctl --etcd-urls "${ENDPOINTS:-http://$ip:2379}" "$@" ;;
  served) # Cluster.icecastMounts() includes the mount
    curl -s --max-time 2 "http://$ip:8000/status-json.xsl" |
      jq -e --arg m "$1" '[.icestats.source // [] | if type == "array" then .[] else . end | .listenurl | sub("^https?://[^/]+"; "")] | index($m) != null' >/dev/null ;;
  in-config) grep -q ">$1<" "${AUTORADIO_ICECAST_CONFIG:-/etc/icecast2/icecast.xml}" ;;
  accepts) # icecastAcceptsSource(): anything but 401 from the local Icecast
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X PUT -u "$2:$3" -H 'Content-Type: audio/mpeg' \
      -H 'Expect:' --data-binary '' "http://$ip:8000$1" || true)
    [ "$code" != 401 ] && [ "$code" != 000 ] ;;
  source-start) # SourceLoop: ffmpeg sine tone, restarted 0.5 s after it exits
    url=$1 user=$2 pass=$3
    nohup bash -c "while :; do ffmpeg -hide_banner -loglevel warning -nostdin -re -f lavfi -i sine=frequency=440:sample_rate=44100 \
      -c:a libmp3lame -b:a 128k -content_type audio/mpeg -f mp3 'icecast://$user:$pass@${url#http://}'; echo restart >>$state/source.restarts; sleep 0.5; done" \
      >"$state/source.log" 2>&1 &
    echo $! >"$state/source.pid" ;;
  source-stop) pkill -P "$(cat "$state/source.pid")" ffmpeg || true; kill "$(cat "$state/source.pid")" 2>/dev/null || true ;;
  source-restarts) [ -f "$state/source.restarts" ] && wc -l <"$state/source.restarts" || echo 0 ;;
  listen-start) # ListenerMonitor: bytes, gaps over 1 s, disconnects (with reconnect)
    name=$1 url=$2
    nohup node -e '
      const http = require("node:http"); const fs = require("node:fs");
      const [url, out] = process.argv.slice(1);
      const s = { bytes: 0, disconnects: 0, maxGapMs: 0, lastDataAt: 0, gapsSince: {} };
      const go = () => http.get(url, (res) => {
        if (res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) { res.resume(); return http.get(res.headers.location, onRes).on("error", again); }
        onRes(res);
      }).on("error", again);
      const onRes = (res) => { res.on("data", (b) => { const now = Date.now();
          if (s.lastDataAt) s.maxGapMs = Math.max(s.maxGapMs, now - s.lastDataAt);
          s.lastDataAt = now; s.bytes += b.length; });
        res.on("close", again); };
      function again() { s.disconnects++; setTimeout(go, 200); }
      setInterval(() => fs.writeFileSync(out, JSON.stringify(s)), 250);
      go();' "$url" "$state/listen-$name.json" >"$state/listen-$name.log" 2>&1 &
    echo $! >"$state/listen-$name.pid" ;;
  listen-report) cat "$state/listen-$1.json" ;;
  listen-stop) kill "$(cat "$state/listen-$1.pid")" 2>/dev/null || true ;;
  kill) # Cluster.kill(): kill -9, and keep systemd from restarting it during the check
    for p in "$@"; do
      unit=$p; [ "$p" = icecast ] && unit=icecast2
      systemctl kill -s SIGKILL "$unit" || true
      systemctl stop "$unit" || true
    done ;;
  start) for p in "$@"; do unit=$p; [ "$p" = icecast ] && unit=icecast2; systemctl start --no-block "$unit"; done ;;
  isolate) # Cluster.dropTraffic(): silent DROP on the cluster interface (ssh on the NAT NIC stays)
    dev=$(iface); iptables -w -I INPUT -i "$dev" -j DROP; iptables -w -I OUTPUT -o "$dev" -j DROP ;;
  heal)
    dev=$(iface); iptables -w -D INPUT -i "$dev" -j DROP || true; iptables -w -D OUTPUT -o "$dev" -j DROP || true ;;
  dig-apex) dig @"$ip" +tries=1 +time=1 +short "$DOMAIN" A | sort ;;
  *) echo "unknown check command: $cmd" >&2; exit 2 ;;
esac
