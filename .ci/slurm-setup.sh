#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (Debian slurm-wlm), for the slurm tests.
#
# Idempotent; run as root. slurmctld and slurmd run as root with AuthType=auth/none, so no
# munge key is needed, and without slurmdbd there is no accounting (sacct is disabled and
# submitit reports job states as UNKNOWN; the sweep reads each trial's result.json instead).
set -euo pipefail

if [[ $EUID -ne 0 ]]; then
    echo "slurm-setup: run as root" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm
fi

host=$(hostname -s)
cpus=$(nproc)
# Leave some memory to the system; slurmd refuses a node that claims more than it has.
memory=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
conf=/etc/slurm/slurm.conf
cat > "$conf.new" <<CONF
# Written by .ci/slurm-setup.sh: a single-node test cluster, no accounting.
ClusterName=ganbench
SlurmctldHost=$host
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=30
Waittime=0
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
changed=1
if [[ -f $conf ]] && cmp -s "$conf" "$conf.new"; then
    changed=0
fi
mv "$conf.new" "$conf"

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if (( changed )); then
    # A new configuration needs fresh daemons.
    for pidfile in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid; do
        if running "$pidfile"; then
            kill "$(cat "$pidfile")"
            sleep 1
        fi
    done
fi
running /run/slurm/slurmctld.pid || slurmctld
running /run/slurm/slurmd.pid || slurmd

# Wait until the node takes jobs.
for _ in $(seq 60); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    if [[ $state == idle* || $state == mix* || $state == alloc* ]]; then
        sinfo
        exit 0
    fi
    if [[ $state == down* || $state == drain* ]]; then
        scontrol update nodename="$host" state=resume 2>/dev/null || true
    fi
    sleep 1
done
echo "slurm-setup: node $host did not become idle; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
