#!/usr/bin/env bash
# Host side: drives checks.sh on the VMs through `vagrant ssh` and runs the scenarios of
# test/cluster/*.test.ts against the packaged cluster. Prints `measured: name=value` lines like
# the netns tests (timings here include one `vagrant ssh` round trip, about 0.3-1 s).
set -euo pipefail
cd "$(dirname "$0")"
NODES=(node1 node2 node3)
declare -A IP=([node1]=192.168.56.11 [node2]=192.168.56.12 [node3]=192.168.56.13)
ALL="http://192.168.56.11:2379,http://192.168.56.12:2379,http://192.168.56.13:2379"

on() { local n=$1; shift; vagrant ssh "$n" -c "sudo ENDPOINTS='${ENDPOINTS:-}' CONSISTENCY='${CONSISTENCY:-l}' bash /autoradio-test/checks.sh $*" -- -q 2>/dev/null; }
now() { date +%s%3N; }
measured() { echo "measured: $1=$2"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_until SECONDS CMD...: polls CMD every 0.5 s
wait_until() { local until=$(( $(now) + $1 * 1000 )); shift; until "$@"; do [ "$(now)" -lt "$until" ] || return 1; sleep 0.5; done; }
served_on() { local m=$1; shift; for n in "$@"; do on "$n" served "$m" || return 1; done; }
master() { ENDPOINTS=${1:-$ALL} on "${2:-node1}" master; }
in_config_on() { local m=$1; shift; for n in "$@"; do on "$n" in-config "$m" || return 1; done; }
master_other_than() { local x; x=$(ENDPOINTS=$2 on "$3" master) && [ -n "$x" ] && [ "$x" != "$1" ]; }
writable() { ENDPOINTS=$ALL on node1 etcd-writable; }
apex_without() { ! on node1 dig-apex | grep -qx "$1"; }
others() { for n in "${NODES[@]}"; do [ "$n" = "$1" ] || echo "$n"; done; }

for n in "${NODES[@]}"; do on "$n" wait-ready || fail "$n not ready"; done
echo "cluster ready"

# ---- propagation (test/cluster/propagation.test.ts)
for i in 1 2 3; do
  t0=$(now)
  read -r user pass < <(ENDPOINTS=$ALL on node1 create-mount "/prop$i.mp3")
  wait_until 20 in_config_on "/prop$i.mp3" "${NODES[@]}" || fail "/prop$i.mp3 not in every icecast.xml"
  measured "vm_mount_config_propagation_ms_$i" $(( $(now) - t0 ))
done

# ---- master crash (test/cluster/failover.test.ts)
m=$(master); [ -n "$m" ] || fail "no master"
mapfile -t surv < <(others "$m")
read -r user pass < <(ENDPOINTS=$ALL on node1 create-mount /live.mp3)
on "${surv[0]}" source-start "http://${IP[${surv[0]}]}/live.mp3" "$user" "$pass"
wait_until 40 served_on /live.mp3 "${NODES[@]}" || fail "/live.mp3 not served everywhere"
for n in "${surv[@]}"; do on "$n" listen-start live "http://${IP[$n]}/_stream/live.mp3"; done
t0=$(now)
on "$m" kill radiod icecast etcd
wait_until 30 master_other_than "$m" "http://${IP[${surv[0]}]}:2379,http://${IP[${surv[1]}]}:2379" "${surv[0]}" || fail "no new master"
measured vm_master_crash_new_master_ms $(( $(now) - t0 ))
wait_until 40 served_on /live.mp3 "${surv[@]}" || fail "/live.mp3 not back on the survivors"
measured vm_master_crash_served_again_ms $(( $(now) - t0 ))
sleep 3 # let the listeners' reports catch up (they write every 250 ms)
for n in "${surv[@]}"; do
  r=$(on "$n" listen-report live)
  measured "vm_master_crash_listener_gap_ms_$n" "$(jq .maxGapMs <<<"$r")"
  measured "vm_master_crash_listener_disconnects_$n" "$(jq .disconnects <<<"$r")"
  [ "$(jq .disconnects <<<"$r")" = 0 ] || fail "listener on $n was disconnected"
  on "$n" listen-stop live
done
on "${surv[0]}" source-stop
on "$m" start etcd icecast radiod
on "$m" wait-ready || fail "$m did not come back"

# ---- partition of the master (test/cluster/partition.test.ts), iptables variant
m=$(master); mapfile -t maj < <(others "$m")
read -r user pass < <(ENDPOINTS=$ALL on node1 create-mount /part.mp3)
on "${maj[0]}" source-start "http://${IP[${maj[0]}]}/part.mp3" "$user" "$pass"
wait_until 40 served_on /part.mp3 "${NODES[@]}" || fail "/part.mp3 not served everywhere"
t0=$(now)
on "$m" isolate
max=0 stopped=-1 took=-1
until [ "$stopped" -ge 0 ] && [ "$took" -ge 0 ]; do
  [ $(( $(now) - t0 )) -lt 40000 ] || fail "no clean master change after the partition"
  count=0
  for n in "${NODES[@]}"; do
    if on "$n" accepts /part.mp3 "$user" "$pass"; then
      count=$((count + 1)); [ "$n" != "$m" ] && [ "$took" -lt 0 ] && took=$(( $(now) - t0 ))
    elif [ "$n" = "$m" ] && [ "$stopped" -lt 0 ]; then stopped=$(( $(now) - t0 )); fi
  done
  [ "$count" -gt "$max" ] && max=$count
done
measured vm_partition_old_master_stops_accepting_ms "$stopped"
measured vm_partition_new_master_accepts_ms "$took"
measured vm_partition_max_nodes_accepting_source "$max"
[ "$max" -le 1 ] || fail "two Icecasts accepted the source"
t1=$(now)
on "$m" heal
wait_until 40 served_on /part.mp3 "$m" || fail "$m did not rejoin as relay"
on "$m" accepts /part.mp3 "$user" "$pass" && fail "$m still accepts the source after the heal"
measured vm_partition_heal_to_relay_ms $(( $(now) - t1 ))
on "${maj[0]}" source-stop

# ---- etcd quorum loss (test/cluster/quorum.test.ts)
m=$(master); mapfile -t rest < <(others "$m")
read -r user pass < <(ENDPOINTS=$ALL on node1 create-mount /quorum.mp3)
on "${rest[0]}" source-start "http://${IP[${rest[0]}]}/quorum.mp3" "$user" "$pass"
wait_until 40 served_on /quorum.mp3 "${NODES[@]}" || fail "/quorum.mp3 not served everywhere"
for n in "${NODES[@]}"; do on "$n" listen-start quorum "http://${IP[$n]}/_stream/quorum.mp3"; done
on "$m" kill etcd; on "${rest[0]}" kill etcd
ENDPOINTS=$ALL on node1 etcd-writable && fail "etcd still writable without quorum"
sleep 15 # three lease TTLs without quorum
if out=$(ENDPOINTS=$ALL on node1 radioctl create-mount /during-outage.mp3 2>&1); then fail "create-mount succeeded without quorum"; fi
echo "radioctl without quorum: $out"
for n in "${NODES[@]}"; do
  r=$(on "$n" listen-report quorum)
  measured "vm_quorum_loss_listener_gap_ms_$n" "$(jq .maxGapMs <<<"$r")"
  [ "$(jq .disconnects <<<"$r")" = 0 ] || fail "listener on $n was disconnected without quorum"
  on "$n" listen-stop quorum
done
t2=$(now)
on "$m" start etcd; on "${rest[0]}" start etcd
wait_until 30 writable || fail "quorum did not return"
measured vm_quorum_back_writable_ms $(( $(now) - t2 ))
on "${rest[0]}" source-stop

# ---- DNS (test/cluster/dns.test.ts)
all=$(printf '%s\n' "${IP[@]}" | sort | tr '\n' ' ')
[ "$(on node1 dig-apex | tr '\n' ' ')" = "$all" ] || fail "apex does not list every node"
t0=$(now)
on node3 kill redirectord radiod icecast etcd
wait_until 30 apex_without "${IP[node3]}" || fail "apex still answers node3"
measured vm_dns_dead_node_removed_ms $(( $(now) - t0 ))
on node3 start etcd icecast radiod redirectord

echo "all VM checks passed"
