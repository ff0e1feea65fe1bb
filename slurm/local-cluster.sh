#!/usr/bin/env bash
# slurm/local-cluster.sh -- a REAL SLURM cluster (slurmctld + slurmd + munged) on this machine for
# tests and CI, on Debian 12 (bookworm) as root, without systemd: one node by default, or N nodes,
# each a slurmd in its own network namespace. Every configuration choice below is explained
# inline or in slurm/README.md (with timings and the pitfalls met on the way).
#
#   slurm/local-cluster.sh up [--nodes N]  # install (apt) + configure + start + smoke job; idempotent, ~15 s fresh, ~1 s warm
#   slurm/local-cluster.sh down [--purge]  # cancel all jobs, stop the daemons, remove the namespaces and links it made
#   slurm/local-cluster.sh status          # daemons, node state, queue; exit 0 only when the cluster accepts jobs
#   slurm/local-cluster.sh kill-node NODE  # a node dies: SIGKILL to its slurmd and every process of its jobs
#   slurm/local-cluster.sh revive-node NODE # start a killed node's slurmd again
#
# Knobs (environment variables):
#   SLURM_LOCAL_INSTANCE     a second cluster beside the default one: its own state directory
#                            (/var/spool/slurm-local-<name>), config ($ROOT/etc/slurm.conf; clients
#                            need SLURM_CONF=<that file>), ClusterName and ports      [unset]
#   SLURM_LOCAL_ROOT         state/spool/log/pid directory   [/var/spool/slurm-local]
#   SLURM_LOCAL_PORT         slurmctld's port; slurmd listens on the next one [6817; 6827 for an instance]
#   SLURM_LOCAL_NET          first three octets of the nodes' private network (N > 1): the bridge is
#                            <net>.1 (slurmctld), node i is <net>.(10+i)       [10.77.0]
#   SLURM_LOCAL_NODE_PREFIX  node (and network namespace) names <prefix>1..N when N > 1 [gpsn]
#   SLURM_LOCAL_SLURMD_TIMEOUT seconds without an answer before slurmctld marks a node DOWN and
#                            requeues its jobs (N > 1; slurm's default is 300) [10]
#   SLURM_LOCAL_KILL_WAIT    seconds between SIGTERM and SIGKILL when a job is cancelled or
#                            requeued (slurm's default is 30) [5]
#   SLURM_LOCAL_CPUS         CPUs the node advertises (> nproc oversubscribes: more array tasks at once) [nproc]
#   SLURM_LOCAL_MEM_MB       RealMemory of the node in MB    [RealMemory of `slurmd -C`]
#   SLURM_LOCAL_GPUS         fake "gpu" GRES count, 0 = none [2]
#   SLURM_LOCAL_PARTITION    name of the default partition   [debug]
#   SLURM_LOCAL_CRED_EXPIRE  AuthInfo cred_expire seconds; also the delay before a requeued job may
#                            start again (slurm default 120; small so requeue tests are quick) [10]
#   SLURM_LOCAL_SMOKE        1 = submit a one-task smoke job at the end of `up` [1]
#   SLURM_LOCAL_TIMEOUT      seconds allowed for each readiness wait [60]
#   SLURM_LOCAL_FORCE_RESTART 1 = restart slurmctld/slurmd even if the config is unchanged [0]
#
# Tested on Debian 12 with slurm-wlm 22.05.8 and munge 0.5.15. sacct does not work on this cluster
# (no slurmdbd): finished jobs are in squeue -t all / scontrol for MinJobAge=3600 s and, forever,
# one line each in $SLURM_LOCAL_ROOT/log/jobcomp.txt.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

INSTANCE=${SLURM_LOCAL_INSTANCE:-}
case "$INSTANCE" in ''|[a-z]|[a-z][a-z0-9]|[a-z][a-z0-9][a-z0-9]*) ;; *) echo "SLURM_LOCAL_INSTANCE must be lowercase letters and digits" >&2; exit 2 ;; esac
if [ -n "$INSTANCE" ]; then
  ROOT=${SLURM_LOCAL_ROOT:-/var/spool/slurm-local-$INSTANCE}
  PORT=${SLURM_LOCAL_PORT:-6827}
else
  ROOT=${SLURM_LOCAL_ROOT:-/var/spool/slurm-local}
  PORT=${SLURM_LOCAL_PORT:-6817}
fi
NET=${SLURM_LOCAL_NET:-10.77.0}
PREFIX=${SLURM_LOCAL_NODE_PREFIX:-gpsn}
SLURMD_TIMEOUT=${SLURM_LOCAL_SLURMD_TIMEOUT:-10}
KILL_WAIT=${SLURM_LOCAL_KILL_WAIT:-5}
[[ "$KILL_WAIT" =~ ^[0-9]+$ ]] || { echo "SLURM_LOCAL_KILL_WAIT must be a number of seconds" >&2; exit 2; }
[[ "$NET" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "SLURM_LOCAL_NET must be three octets, e.g. 10.77.0" >&2; exit 2; }
[[ "$PREFIX" =~ ^[a-z][a-z0-9]{0,7}$ ]] || { echo "SLURM_LOCAL_NODE_PREFIX must be 1-8 lowercase letters and digits" >&2; exit 2; }
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "SLURM_LOCAL_PORT must be a number" >&2; exit 2; }
GPUS=${SLURM_LOCAL_GPUS:-2}
PART=${SLURM_LOCAL_PARTITION:-debug}
CRED_EXPIRE=${SLURM_LOCAL_CRED_EXPIRE:-10}
SMOKE=${SLURM_LOCAL_SMOKE:-1}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
FORCE_RESTART=${SLURM_LOCAL_FORCE_RESTART:-0}
if [ -n "$INSTANCE" ]; then
  CONF_DIR=$ROOT/etc                     # clients (and this script's own calls) use SLURM_CONF
  export SLURM_CONF=$CONF_DIR/slurm.conf
else
  CONF_DIR=/etc/slurm                    # Debian's compiled-in default: clients need no SLURM_CONF
fi
CONF=$CONF_DIR/slurm.conf
NODES_FILE=$ROOT/run/nodes               # the node names of the running configuration, one per line
NETWORK_FILE=$ROOT/run/network           # what `up` made: "netns <name> <inode>" and "link <name>" lines
GRES_CONF=$CONF_DIR/gres.conf
MARK="# generated by slurm/local-cluster.sh"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
T0=$(now_ms)
elapsed() { local ms=$(( $(now_ms) - T0 )); printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100)); }
log() { printf '[slurm-local %5ss] %s\n' "$(elapsed)" "$*"; }
die() {
  echo "[slurm-local] ERROR: $*" >&2
  for f in "$ROOT/log/slurmctld.log" "$ROOT"/log/slurmd*.log /var/log/munge/munged.log; do
    [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 25 "$f" >&2; }
  done
  exit 1
}
usage() { sed -n '2,13p' "$0"; }

# --------------------------------------------------------------------------- pid-file helpers
# Processes are found and stopped only through the pid files the daemons wrote (never by name).
# A zombie (a daemon killed whose parent, not always a reaping init in a container, has not
# collected it) counts as dead.
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
pid_of() { # pidfile comm -> prints pid if that process is alive and has that comm
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}
stop_pidfile() { # pidfile comm
  local pid i; pid=$(pid_of "$1" "$2") || { rm -f "$1"; return 0; }
  log "stopping $2 (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do alive "$pid" || { rm -f "$1"; return 0; }; sleep 0.1; done
  log "$2 (pid $pid) ignored SIGTERM for 20 s -> SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; rm -f "$1"
}
wait_for() { # description, command...   (polls every 0.2 s up to $TIMEOUT s)
  local what=$1; shift; local end=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
  log "$what"
}
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

# --------------------------------------------------------------------------- the nodes' network
# N > 1: node i is a slurmd in network namespace <prefix>i (and its own UTS namespace, so its
# hostname is its node name, as on a real cluster), reached over a veth pair whose host ends hang
# on one bridge that holds slurmctld's address <net>.1. The namespaces have no route but their
# own /24: traffic goes only between the addresses made here. Every namespace and link made is
# written to $NETWORK_FILE first, so `down` (or the next `up` after a killed run) removes
# exactly those, and nothing else.
BRIDGE=${PREFIX}-br
node_names() { local n=$1 i; if [ "$n" -le 1 ]; then hostname -s; else for i in $(seq 1 "$n"); do echo "$PREFIX$i"; done; fi; }
node_addr() { local name=$1; if [ "$name" = "$(hostname -s)" ]; then echo 127.0.0.1; else echo "$NET.$(( 10 + ${name#"$PREFIX"} ))"; fi; }
is_netns_node() { [[ "$1" =~ ^${PREFIX}[0-9]+$ ]] && grep -q "^netns $1 " "$NETWORK_FILE" 2>/dev/null; }

# Every process in the namespace whose inode is $2 (found through /proc, so it works from any
# mount namespace, even where /run/netns/<name> is not visible), killed with SIGKILL.
kill_netns_procs() { # name inode
  local name=$1 ino=$2 pid pids i
  for i in $(seq 1 50); do
    pids=""
    for pid in /proc/[0-9]*; do
      [ "$(readlink "$pid/ns/net" 2>/dev/null)" = "net:[$ino]" ] && pids="$pids ${pid#/proc/}"
    done
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    [ "$i" = 1 ] && log "node $name: SIGKILL to $(echo $pids | wc -w) processes (slurmd and its jobs)"
    sleep 0.1
  done
  log "warning: processes left in namespace $name: $pids"
}

net_down() {
  [ -f "$NETWORK_FILE" ] || return 0
  local kind name ino
  while read -r kind name ino; do
    [ "$kind" = netns ] || continue
    kill_netns_procs "$name" "$ino"
    ip netns del "$name" 2>/dev/null && log "removed network namespace $name"
  done <"$NETWORK_FILE"
  while read -r kind name ino; do
    [ "$kind" = link ] || continue
    ip link del "$name" 2>/dev/null && log "removed link $name"
  done <"$NETWORK_FILE"
  rm -f "$NETWORK_FILE"
}

net_up() { # node names...
  local name addr ino
  mkdir -p "$ROOT/run"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    echo "link $BRIDGE" >>"$NETWORK_FILE"
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
    ip addr add "$NET.1/24" dev "$BRIDGE" || die "cannot give $BRIDGE the address $NET.1/24"
    ip link set "$BRIDGE" up
    log "bridge $BRIDGE $NET.1/24"
  elif ! grep -q "^link $BRIDGE\$" "$NETWORK_FILE" 2>/dev/null; then
    die "a link named $BRIDGE exists that this script did not make; set SLURM_LOCAL_NODE_PREFIX"
  fi
  for name in "$@"; do
    ino=$(awk -v n="$name" '$1 == "netns" && $2 == n {print $3}' "$NETWORK_FILE" 2>/dev/null)
    if [ -n "$ino" ]; then
      [ "$(stat -L -c %i "/run/netns/$name" 2>/dev/null)" = "$ino" ] && continue
      # Made by a run that was killed, in a mount namespace of its own (CI hides ../shared in
      # one): the name no longer leads to it. Its processes are found by inode and stopped; the
      # namespace goes with them, and is made again.
      log "node $name: namespace left by a killed run; replacing it"
      kill_netns_procs "$name" "$ino"
      rm -f "$(slurmd_pidfile "$name")"
      ip netns del "$name" 2>/dev/null || rm -f "/run/netns/$name"
      ip link del "$name-h" 2>/dev/null || true
      sed -i "/^netns $name /d" "$NETWORK_FILE"
    fi
    [ -e "/run/netns/$name" ] && die "a network namespace named $name exists that this script did not make"
    addr=$(node_addr "$name")
    ip netns add "$name" || die "cannot create network namespace $name"
    ino=$(stat -L -c %i "/run/netns/$name")
    echo "netns $name $ino" >>"$NETWORK_FILE"
    ip link add "$name-h" type veth peer name eth0 netns "$name" || die "cannot create veth $name-h"
    ip link set "$name-h" master "$BRIDGE" up
    ip -n "$name" addr add "$addr/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up
    log "node $name: namespace $name, address $addr"
  done
}

start_slurmd() { # node name
  local name=$1
  if [ "$name" = "$(hostname -s)" ]; then
    /usr/sbin/slurmd -N "$name" || die "slurmd failed to start"
  else
    # its own hostname (UTS namespace) and network; the file system is the machine's, shared as a
    # cluster shares its home. nsenter, not `ip netns exec`: the latter mounts a fresh /sys for the
    # namespace, without the cgroup file system that slurmd 22.05 insists on probing.
    mkdir -p "$ROOT/state/slurmd-$name"
    nsenter --net="/run/netns/$name" unshare --uts sh -c 'hostname "$1" && exec /usr/sbin/slurmd -N "$1"' _ "$name" \
      || die "slurmd of node $name failed to start"
  fi
  for i in $(seq 1 50); do pid_of "$(slurmd_pidfile "$name")" slurmd >/dev/null && break; sleep 0.1; done
  log "started slurmd of $name (pid $(cat "$(slurmd_pidfile "$name")" 2>/dev/null))"
}
slurmd_pidfile() { if [ "$1" = "$(hostname -s)" ]; then echo "$ROOT/run/slurmd.pid"; else echo "$ROOT/run/slurmd-$1.pid"; fi; }

# =========================================================================== up
cmd_up() {
local NNODES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) [[ "${2:-}" =~ ^[1-9][0-9]?$ ]] || { echo "--nodes takes a number from 1 to 99" >&2; exit 2; }; NNODES=$2; shift 2 ;;
    *) echo "unknown argument to up: $1 (expected --nodes N; the rest are SLURM_LOCAL_* variables)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || die "'up' must run as root (it installs packages and starts daemons)"
# --------------------------------------------------------------------------- 1. packages
need_install=0
for b in slurmctld slurmd sbatch squeue scontrol sinfo munged munge unmunge; do
  command -v "$b" >/dev/null 2>&1 || need_install=1
done
mkdir -p "$ROOT"/{log,run,state/ctld,state/slurmd,fakegpu}
if [ "$need_install" = 1 ]; then
  log "installing slurm-wlm + munge from Debian (apt-get update + install --no-install-recommends)"
  apt-get update -qq >"$ROOT/log/apt.log" 2>&1 || { sleep 3; apt-get update >>"$ROOT/log/apt.log" 2>&1; } \
    || { tail -20 "$ROOT/log/apt.log"; die "apt-get update failed"; }
  # Without a policy-rc.d that denies starts, dpkg may try to start the packaged services; harmless
  # (slurmd/slurmctld units need /etc/slurm/slurm.conf; we start our own daemons below anyway).
  apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 slurm-wlm munge >>"$ROOT/log/apt.log" 2>&1 \
    || { tail -30 "$ROOT/log/apt.log"; die "apt-get install failed"; }
  log "installed: $(dpkg-query -W -f='${Package}=${Version} ' slurmctld slurmd slurm-client munge)"
else
  log "packages already installed: $(dpkg-query -W -f='${Package}=${Version} ' slurmctld slurmd slurm-client munge 2>/dev/null || echo '(not from dpkg)')"
fi

# --------------------------------------------------------------------------- 2. node facts
HOST=$(hostname -s)
[ -n "$HOST" ] || die "empty hostname"
NODE=$HOST
mapfile -t NODE_LIST < <(node_names "$NNODES")
if [ "$NNODES" -gt 1 ]; then
  CTLD_ADDR=$NET.1
  command -v ip >/dev/null || die "'ip' (iproute2) is needed for --nodes $NNODES"
else
  CTLD_ADDR=127.0.0.1
fi
# SlurmctldHost must equal `hostname -s`; addresses are pinned to 127.0.0.1 so DNS is not needed,
# but some code paths still resolve the own hostname -> make sure it resolves.
if ! getent hosts "$NODE" >/dev/null 2>&1; then
  log "adding '127.0.0.1 $NODE' to /etc/hosts (hostname did not resolve)"
  echo "127.0.0.1 $NODE" >>/etc/hosts
fi
HW=$(slurmd -C 2>/dev/null | head -n1) || true
HW_CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
HW_MEM=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
[ -n "$HW_CPUS" ] || HW_CPUS=$(nproc)
[ -n "$HW_MEM" ] || HW_MEM=$(( $(awk '/^MemTotal:/{print $2}' /proc/meminfo) / 1024 ))
CPUS=${SLURM_LOCAL_CPUS:-$HW_CPUS}
MEM=${SLURM_LOCAL_MEM_MB:-$HW_MEM}
DEF_MEM=$(( MEM / CPUS )); [ "$DEF_MEM" -gt 1024 ] && DEF_MEM=1024; [ "$DEF_MEM" -lt 64 ] && DEF_MEM=64

# --------------------------------------------------------------------------- 3. config
# Fake GPUs: slurm 22.05 ignores a count-only gpu GRES (node goes INVAL "gres/gpu count reported
# lower than configured (0 < N)"), so gres.conf must list one device file per GPU. The files are
# character devices cloned from /dev/null (c 1 3) -- nothing ever opens them with task/none.
GRES_NODE=""; GRES_TYPES=""
if [ "$GPUS" -gt 0 ]; then
  for i in $(seq 0 $((GPUS - 1))); do
    f="$ROOT/fakegpu/nvidia$i"
    [ -c "$f" ] && continue
    rm -f "$f"
    mknod -m 0666 "$f" c 1 3 2>/dev/null || die "mknod $f failed (need CAP_MKNOD); set SLURM_LOCAL_GPUS=0"
  done
  if [ "$GPUS" -eq 1 ]; then files="$ROOT/fakegpu/nvidia0"; else files="$ROOT/fakegpu/nvidia[0-$((GPUS - 1))]"; fi
  GRES_NODE=" Gres=gpu:$GPUS"
  GRES_TYPES="GresTypes=gpu"
fi

mkdir -p "$CONF_DIR"
if [ "$NNODES" -gt 1 ]; then
  # %n: each slurmd has its own spool, pid file and log
  SLURMD_FILES="SlurmdSpoolDir=$ROOT/state/slurmd-%n
SlurmdPidFile=$ROOT/run/slurmd-%n.pid
SlurmdLogFile=$ROOT/log/slurmd-%n.log"
else
  SLURMD_FILES="SlurmdSpoolDir=$ROOT/state/slurmd
SlurmdPidFile=$ROOT/run/slurmd.pid
SlurmdLogFile=$ROOT/log/slurmd.log"
fi
NODE_LINES=""
for n in "${NODE_LIST[@]}"; do
  NODE_LINES+="NodeName=$n NodeAddr=$(node_addr "$n") CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM$GRES_NODE State=UNKNOWN
"
done
NEW_CONF=$(cat <<EOF
$MARK -- $NNODES-node test cluster, do not use in production
ClusterName=${INSTANCE:-local}
SlurmctldHost=$HOST($CTLD_ADDR)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=$CRED_EXPIRE
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$ROOT/state/ctld
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
$SLURMD_FILES
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
# no cgroup-based tracking/confinement (slurmd 22.05 still probes cgroups at start: see cgroup.conf below)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# scheduling: per-CPU + memory, fast reaction for a tiny queue
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=2
# a job whose dependency can never be satisfied (e.g. afterok on a failed task) is cancelled
# instead of pending forever with Reason=DependencyNeverSatisfied
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
# trust the node line below (allows SLURM_LOCAL_CPUS > real cpus, ignores topology differences)
SlurmdParameters=config_overrides
# a node that was DOWN (lost, or its slurmd restarted) is back in service as soon as its slurmd
# registers with a valid configuration: no admin "scontrol update State=RESUME" on a test cluster
ReturnToService=2
# batch jobs may be requeued (the default, written down): a task on a node that is lost is
# requeued and runs again on another node, where it resumes from its checkpoint
JobRequeue=1
# how long a node may not answer before it is marked DOWN and its jobs requeued (slurm: 300 s;
# a test cluster wants to see a lost node within seconds, not minutes)
SlurmdTimeout=$SLURMD_TIMEOUT
# reject at submit time what can never run here (e.g. -c 3 on a 2-CPU node) instead of
# leaving it PENDING forever with Reason=PartitionConfig
EnforcePartLimits=ALL
KillWait=$KILL_WAIT
MaxArraySize=10001
MaxJobCount=100000
# keep finished jobs (and array tasks) visible in squeue -t all / scontrol for 1 h
MinJobAge=3600
# no slurmdbd: sacct does not work ("Slurm accounting storage is disabled");
# finished jobs are appended, one line each, to the jobcomp file instead
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$ROOT/log/jobcomp.txt
$GRES_TYPES
$NODE_LINES
PartitionName=$PART Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ "$GPUS" -gt 0 ]; then
  NEW_GRES=$(printf '%s\nAutoDetect=off\n' "$MARK"; for n in "${NODE_LIST[@]}"; do printf 'NodeName=%s Name=gpu File=%s\n' "$n" "$files"; done)
else
  NEW_GRES=""
fi

# slurmd 22.05 always initialises its cgroup plugin (even with proctrack/linuxproc + task/none).
# On this Debian VM (cgroup v1/hybrid, /sys/fs/cgroup is tmpfs) autodetect picks cgroup/v1 and
# works without any cgroup.conf.  On a pure cgroup-v2 host without systemd (e.g. a container on a
# v2 host) slurmd needs cgroup/v2 and must not insist on talking to systemd over dbus.
# UNTESTED here (no pure v2 host available); slurmd also needs a writable /sys/fs/cgroup there.
CG_CONF=$CONF_DIR/cgroup.conf
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
  NEW_CG=$(printf '%s\nCgroupPlugin=cgroup/v2\nIgnoreSystemdOnFailure=yes\n' "$MARK")
else
  NEW_CG=""
fi

changed=0
if [ -n "$NEW_CG" ] && [ "$(cat "$CG_CONF" 2>/dev/null)" != "$NEW_CG" ]; then
  [ -f "$CG_CONF" ] && ! grep -qF "$MARK" "$CG_CONF" && cp -a "$CG_CONF" "$CG_CONF.bak.$(date +%s)"
  printf '%s\n' "$NEW_CG" >"$CG_CONF"; changed=1; log "wrote $CG_CONF (pure cgroup v2 host)"
fi
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  cp -a "$CONF" "$CONF.bak.$(date +%s)"; log "existing foreign $CONF backed up"
fi
if [ "$(cat "$CONF" 2>/dev/null)" != "$NEW_CONF" ]; then
  printf '%s\n' "$NEW_CONF" >"$CONF"; changed=1; log "wrote $CONF"
fi
if [ -n "$NEW_GRES" ]; then
  if [ "$(cat "$GRES_CONF" 2>/dev/null)" != "$NEW_GRES" ]; then
    [ -f "$GRES_CONF" ] && ! grep -qF "$MARK" "$GRES_CONF" && cp -a "$GRES_CONF" "$GRES_CONF.bak.$(date +%s)"
    printf '%s\n' "$NEW_GRES" >"$GRES_CONF"; changed=1; log "wrote $GRES_CONF"
  fi
elif [ -f "$GRES_CONF" ]; then
  mv "$GRES_CONF" "$GRES_CONF.bak.$(date +%s)"; changed=1; log "moved away $GRES_CONF (SLURM_LOCAL_GPUS=0)"
fi
chmod 0644 "$CONF" "$GRES_CONF" 2>/dev/null || true

# --------------------------------------------------------------------------- 4. munged
if munge_ok; then
  log "munged already running"
else
  if [ ! -s /etc/munge/munge.key ]; then mungekey --create --keyfile=/etc/munge/munge.key; fi
  chown munge:munge /etc/munge /etc/munge/munge.key && chmod 0700 /etc/munge && chmod 0600 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  # --force: start even if a stale socket/pid file from an unclean shutdown exists
  runuser -u munge -- /usr/sbin/munged --force
  wait_for "munged up" munge_ok || die "munged did not come up"
  touch "$ROOT/run/munged.started-by-slurm-local"   # so `down` stops it (and only then)
fi

# --------------------------------------------------------------------------- 5. slurm daemons
stop_all_slurmd() { # every slurmd of the configuration that ran before (names in $NODES_FILE)
  local n
  for n in $(cat "$NODES_FILE" 2>/dev/null) "$HOST"; do stop_pidfile "$(slurmd_pidfile "$n")" slurmd; done
}
if [ "$changed" = 1 ] || [ "$FORCE_RESTART" = 1 ]; then
  if [ -s "$NODES_FILE" ] || pid_of "$ROOT/run/slurmctld.pid" slurmctld >/dev/null; then
    log "config changed -> restarting slurm daemons"
  fi
  stop_all_slurmd
  stop_pidfile "$ROOT/run/slurmctld.pid" slurmctld
  net_down   # the node set may have changed: namespaces are made again below
fi
if [ "$NNODES" -gt 1 ]; then
  net_up "${NODE_LIST[@]}"
elif [ -f "$NETWORK_FILE" ]; then
  net_down
fi
printf '%s\n' "${NODE_LIST[@]}" >"$NODES_FILE"
if pid_of "$ROOT/run/slurmctld.pid" slurmctld >/dev/null; then
  log "slurmctld already running (pid $(pid_of "$ROOT/run/slurmctld.pid" slurmctld))"
else
  # -i: ignore unreadable state files instead of refusing to start; it daemonizes itself
  /usr/sbin/slurmctld -i || die "slurmctld failed to start"
  log "started slurmctld (pid $(cat "$ROOT/run/slurmctld.pid" 2>/dev/null))"
fi
wait_for "slurmctld answers" bash -c 'scontrol ping | grep -q "is UP"' || die "slurmctld not answering"
for n in "${NODE_LIST[@]}"; do
  if pid_of "$(slurmd_pidfile "$n")" slurmd >/dev/null; then
    log "slurmd of $n already running (pid $(pid_of "$(slurmd_pidfile "$n")" slurmd))"
  else
    start_slurmd "$n"
  fi
done

node_state() { sinfo -h -N -n "$1" -o '%T' 2>/dev/null | head -n1; }
for n in "${NODE_LIST[@]}"; do
  end=$(( $(date +%s) + TIMEOUT )); resumed=0
  while :; do
    st=$(node_state "$n")
    case "$st" in
      idle|mixed|allocated|completing) break ;;
      *drain*|*inval*|down*|*fail*)
        # typically a DRAIN/INVAL/DOWN remembered in the saved node state from an earlier run
        if [ "$resumed" = 0 ] && pid_of "$(slurmd_pidfile "$n")" slurmd >/dev/null; then
          log "node $n is '$st' ($(sinfo -h -N -n "$n" -o '%E')); resuming it"
          scontrol update NodeName="$n" State=RESUME >/dev/null 2>&1 || true; resumed=1
        fi ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || die "node $n not idle after ${TIMEOUT}s (state '$st', reason '$(sinfo -h -N -n "$n" -o '%E')')"
    sleep 0.2
  done
  log "node $n is $st: $(sinfo -h -N -n "$n" -o 'CPUs=%c Mem=%mMB Gres=%G partition=%P')"
done

# --------------------------------------------------------------------------- 6. smoke test
if [ "$SMOKE" = 1 ]; then
  gres=(); [ "$GPUS" -gt 0 ] && gres=(--gres=gpu:1)
  # one task per node (-N): every node runs jobs before `up` says ready
  jid=$(sbatch --parsable -J slurm-local-smoke -D "$ROOT" -o /dev/null -t 1 -N "$NNODES" "${gres[@]}" --wrap true) \
    || die "smoke job submission failed"
  wait_for "smoke job $jid finished" bash -c "[ -z \"\$(squeue -h -j $jid -o %i 2>/dev/null)\" ]" \
    || die "smoke job $jid still queued after ${TIMEOUT}s: $(squeue -j "$jid" 2>&1)"
  scontrol show job "$jid" 2>/dev/null | grep -q 'JobState=COMPLETED' \
    || die "smoke job $jid did not complete: $(scontrol show job "$jid" 2>&1 | grep -E 'JobState|Reason')"
fi

log "ready: $NNODES node(s) $(echo "${NODE_LIST[@]}"), partition $PART, CPUs=$CPUS, RealMemory=${MEM}MB, fake gpus=$GPUS; logs in $ROOT/log"
[ -n "$INSTANCE" ] && log "clients: export SLURM_CONF=$CONF"
log "stop with: $0 down   (add --purge to wipe state and config)"
}

# =========================================================================== down
cmd_down() {
set +e   # best effort: stop whatever is still running even if one step fails
local PURGE=0 a ids i f
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    *) echo "unknown argument to down: $a (expected --purge)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || die "'down' must run as root"
# 1. cancel every job while slurmctld+slurmd still run, so no slurmstepd/job process is left behind
if pid_of "$ROOT/run/slurmctld.pid" slurmctld >/dev/null; then
  ids=$(squeue -h -o '%A' 2>/dev/null | sort -u)
  if [ -n "$ids" ]; then
    log "cancelling jobs: $(echo $ids)"
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null
    for i in $(seq 1 150); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.2; done
    [ -n "$(squeue -h -o %A 2>/dev/null)" ] && log "warning: jobs still listed: $(squeue -h -o '%i %T' | tr '\n' ' ')"
  fi
fi

# 2. daemons, compute side first; then whatever is left in the nodes' namespaces, and the
#    namespaces and links themselves
local n
for n in $(cat "$NODES_FILE" 2>/dev/null) "$(hostname -s)"; do stop_pidfile "$(slurmd_pidfile "$n")" slurmd; done
stop_pidfile "$ROOT/run/slurmctld.pid" slurmctld
net_down
rm -f "$NODES_FILE"
if [ -f "$ROOT/run/munged.started-by-slurm-local" ]; then
  stop_pidfile /run/munge/munged.pid munged
  rm -f "$ROOT/run/munged.started-by-slurm-local"
else
  log "munged was not started by slurm/local-cluster.sh up; leaving it alone"
fi

# 3. optional purge of state and generated config
if [ "$PURGE" = 1 ]; then
  case "$ROOT" in /|/var|/var/spool|/tmp|"") echo "refusing to purge ROOT=$ROOT" >&2; exit 1 ;; esac
  log "purging $ROOT"
  rm -rf "$ROOT"
  for f in "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf" "$CONF_DIR/cgroup.conf"; do
    if [ -f "$f" ] && grep -qF "$MARK" "$f"; then rm -f "$f"; log "removed $f"; fi
  done
fi
log "done (packages left installed; remove with: apt-get purge slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge)"
}

# =========================================================================== status
cmd_status() {
local ok=0 d n st pid
for d in "slurmctld:$ROOT/run/slurmctld.pid" "munged:/run/munge/munged.pid"; do
  if pid=$(pid_of "${d#*:}" "${d%%:*}"); then echo "${d%%:*}: running (pid $pid)"; else echo "${d%%:*}: not running"; ok=1; fi
done
local nodes; nodes=$(cat "$NODES_FILE" 2>/dev/null || hostname -s)
for n in $nodes; do
  if pid=$(pid_of "$(slurmd_pidfile "$n")" slurmd); then echo "slurmd of $n: running (pid $pid)"; else echo "slurmd of $n: not running"; ok=1; fi
done
if [ "$ok" = 0 ] && command -v sinfo >/dev/null 2>&1; then
  for n in $nodes; do
    st=$(sinfo -h -N -n "$n" -o '%T' 2>/dev/null | head -n1)
    echo "node $n: ${st:-unknown} $(sinfo -h -N -n "$n" -o 'CPUs=%c Mem=%mMB Gres=%G partition=%P' 2>/dev/null)"
    case "$st" in idle|mixed|allocated|completing) ;; *) ok=1 ;; esac
  done
  echo "queue:"; squeue -o '  %i %j %T %r %N' 2>/dev/null || true
fi
[ "$ok" = 0 ] && echo "cluster: up" || echo "cluster: down (start it with: $0 up)"
return "$ok"
}

# =========================================================================== node loss
cmd_kill_node() { # a node dies at once: no SIGTERM, no checkpoint, no goodbye to slurmctld
  local name=${1:-} ino
  [ "$(id -u)" = 0 ] || die "'kill-node' must run as root"
  is_netns_node "$name" || die "'$name' is not a node in its own namespace of this cluster (nodes: $(echo $(cat "$NODES_FILE" 2>/dev/null)))"
  ino=$(awk -v n="$name" '$1 == "netns" && $2 == n {print $3}' "$NETWORK_FILE")
  kill_netns_procs "$name" "$ino"
  rm -f "$(slurmd_pidfile "$name")"
  log "node $name is lost; slurmctld marks it DOWN after SlurmdTimeout=${SLURMD_TIMEOUT}s and requeues its jobs"
}

cmd_revive_node() {
  local name=${1:-}
  [ "$(id -u)" = 0 ] || die "'revive-node' must run as root"
  is_netns_node "$name" || die "'$name' is not a node in its own namespace of this cluster"
  pid_of "$(slurmd_pidfile "$name")" slurmd >/dev/null && { log "slurmd of $name is running"; return 0; }
  start_slurmd "$name"
  log "node $name: slurmd started; ReturnToService=2 puts it back in service when it registers"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  kill-node) shift; cmd_kill_node "$@" ;;
  revive-node) shift; cmd_revive_node "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
