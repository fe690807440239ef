#!/usr/bin/env bash
# The quickstart: a real "node" namespace with a bridge cluster network and a macvlan segment,
# a real pod namespace, plexus attaching both networks the way a container runtime would,
# then DEL and a check that nothing is left. Everything lives in namespaces this script makes.
set -euo pipefail
PLEXUS=$(realpath "${1:-target/debug/plexus}")
PLUGINS=${CNI_PLUGIN_DIR:-/usr/lib/cni}
TAG=pxdemo$$
NODE=$TAG-node POD=$TAG-pod
WORK=$(mktemp -d /tmp/plexus-demo.XXXXXX)

cleanup() {
  ip netns del "$POD" 2>/dev/null || true
  ip netns del "$NODE" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "A node namespace ($NODE) with a macvlan master, and a pod namespace ($POD)"
ip netns add "$NODE"
ip netns add "$POD"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add dm0 type veth peer name dm0p
ip -n "$NODE" link set dm0 up
ip -n "$NODE" link set dm0p up

mkdir -p "$WORK/net.d"
cat > "$WORK/net.d/10-cluster.conflist" <<JSON
{"cniVersion":"1.0.0","name":"cluster","plugins":[
  {"type":"bridge","bridge":"pxdemo0","isGateway":true,
   "ipam":{"type":"host-local","dataDir":"$WORK/leases","ranges":[[{"subnet":"10.244.7.0/24"}]]}}]}
JSON
cat > "$WORK/net.d/20-storage.conf" <<JSON
{"cniVersion":"0.4.0","name":"storage","type":"macvlan","master":"dm0","mode":"bridge",
 "ipam":{"type":"host-local","dataDir":"$WORK/leases","ranges":[[{"subnet":"192.168.77.0/24"}]]}}
JSON
CONF=$(cat <<JSON
{"cniVersion":"1.0.0","name":"plexus","type":"plexus",
 "confDir":"$WORK/net.d","cniDir":"$WORK/journal","binDir":"$PLUGINS",
 "clusterNetwork":"$WORK/net.d/10-cluster.conflist","defaultNetworks":["storage"],
 "logFile":"$WORK/plexus.log","logLevel":"debug","logToStderr":false}
JSON
)
echo "plexus config (what the runtime passes on stdin):"
echo "$CONF"

cni() { # cni VERB
  echo "$CONF" | ip netns exec "$NODE" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=demo-sandbox-1 \
    CNI_NETNS="/run/netns/$POD" CNI_IFNAME=eth0 CNI_PATH="$PLUGINS" \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=demo" "$PLEXUS"
}

step "ADD (the runtime's call): result printed by plexus"
cni ADD | python3 -m json.tool

step "Interfaces inside the pod"
ip -n "$POD" -br addr show | grep -v '^lo'

step "What plexus journaled for this sandbox (cniDir)"
ls -l "$WORK/journal"

step "CHECK"
cni CHECK && echo "CHECK passed"

step "DEL"
cni DEL && echo "DEL succeeded"

step "Nothing left behind"
links=$(ip -n "$POD" -br link show | grep -cv '^lo' || true)
leases=$(find "$WORK/leases" -type f ! -name lock ! -name 'last_reserved_ip*' | wc -l)
journal=$(find "$WORK/journal" -type f | wc -l)
echo "pod interfaces besides lo: $links; IP leases: $leases; journal files: $journal"
[ "$links" = 0 ] && [ "$leases" = 0 ] && [ "$journal" = 0 ]
echo "clean."
