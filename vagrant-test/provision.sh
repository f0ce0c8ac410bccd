#!/usr/bin/env bash
# Runs on each VM (as root) at `vagrant up`: installs the built packages, joins the etcd cluster
# with the harness's timings, configures /etc/default/autoradio and starts the daemons.
# Env from the Vagrantfile: NODE_INDEX, NODE_IP, CLUSTER_IPS (comma list), CLUSTER_DOMAIN.
set -euo pipefail
: "${NODE_INDEX:?}" "${NODE_IP:?}" "${CLUSTER_IPS:?}" "${CLUSTER_DOMAIN:?}"
export DEBIAN_FRONTEND=noninteractive
name="node$NODE_INDEX"

apt-get -o DPkg::Lock::Timeout=300 update -q
# The test tools the checks use (same as the netns harness: curl, dig, ffmpeg, etcdctl, iptables).
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
  etcd-server etcd-client icecast2 curl bind9-dnsutils ffmpeg iptables jq
apt-get -o DPkg::Lock::Timeout=300 install -y -q /autoradio-debs/autoradio-common_*.deb \
  /autoradio-debs/autoradio-server_*.deb /autoradio-debs/autoradio-client_*.deb

# etcd: one member per VM, the same flags as test/support/cluster.ts startEtcd(). The package
# started a single-member cluster on install: wipe it before joining the 3-member one.
systemctl stop etcd || true
rm -rf /var/lib/etcd/default
initial=""
i=0
IFS=, read -ra ips <<<"$CLUSTER_IPS"
for peer in "${ips[@]}"; do
  i=$((i + 1))
  initial="${initial:+$initial,}node$i=http://$peer:2380"
done
cat >/etc/default/etcd <<CONF
ETCD_NAME=$name
ETCD_DATA_DIR=/var/lib/etcd/default
ETCD_LISTEN_CLIENT_URLS=http://$NODE_IP:2379,http://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=http://$NODE_IP:2379
ETCD_LISTEN_PEER_URLS=http://$NODE_IP:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://$NODE_IP:2380
ETCD_INITIAL_CLUSTER=$initial
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=autoradio-vagrant
ETCD_AUTO_COMPACTION_MODE=periodic
ETCD_AUTO_COMPACTION_RETENTION=1h
ETCD_HEARTBEAT_INTERVAL=100
ETCD_ELECTION_TIMEOUT=1000
ETCD_PRE_VOTE=true
CONF
# A member of a new 3-member cluster waits for its peers: do not block provisioning on it.
systemctl enable etcd
systemctl start --no-block etcd

# Port 53 must be free for redirectord.
if systemctl is-active --quiet systemd-resolved; then
  mkdir -p /etc/systemd/resolved.conf.d
  printf '[Resolve]\nDNSStubListener=no\n' >/etc/systemd/resolved.conf.d/autoradio.conf
  systemctl restart systemd-resolved
fi

nameservers=""
for j in $(seq 1 "${#ips[@]}"); do nameservers="${nameservers:+$nameservers,}node$j.$CLUSTER_DOMAIN"; done
# The same flags the harness passes (test/support/cluster.ts daemonArgv), as environment.
cat >/etc/default/autoradio <<CONF
DOMAIN=$CLUSTER_DOMAIN
AUTORADIO_NAME=$name
AUTORADIO_IP=$NODE_IP
AUTORADIO_ETCD_URLS=http://$NODE_IP:2379
AUTORADIO_LOG_LEVEL=info
AUTORADIO_ICECAST_CONFIG=/etc/icecast2/icecast.xml
AUTORADIO_ICECAST_PORT=8000
AUTORADIO_LEASE_TTL=5
AUTORADIO_HTTP_PORT=80
AUTORADIO_DNS_PORT=53
AUTORADIO_NAMESERVERS=$nameservers
CONF
systemctl enable icecast2 radiod redirectord
systemctl restart icecast2
systemctl restart --no-block radiod redirectord
echo "$name provisioned ($NODE_IP)"
