#!/bin/sh
# A remote-shell agent for OpenMPI (--mca plm_rsh_agent) that "logs in" to a network namespace
# on this machine instead of to another host: HOST is looked up in NUMCNN_NETNS_HOSTS, a
# space-separated list of ADDRESS=NAMESPACE pairs, and the command runs there through
# `ip netns exec`. Used by the multi-host test to place ranks in two namespaces joined by a veth
# pair, so that they talk over TCP as on two machines.
#
# usage: netns_rsh.sh [OPTION...] HOST COMMAND...
while [ $# -gt 0 ]; do
    case "$1" in
        -*) shift ;;  # options meant for ssh (such as -x)
        *) break ;;
    esac
done
host=$1
shift
for pair in $NUMCNN_NETNS_HOSTS; do
    if [ "${pair%%=*}" = "$host" ]; then
        # a UTS namespace too, named after the network namespace: MPI tells nodes apart by
        # hostname (and names its session folders after it)
        exec ip netns exec "${pair#*=}" unshare --uts /bin/sh -c \
            'hostname "$(echo "$0" | tr _ -)" && exec /bin/sh -c "$1"' "${pair#*=}" "$*"
    fi
done
echo "netns_rsh.sh: no namespace for host $host in NUMCNN_NETNS_HOSTS" >&2
exit 255
