#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine: munged, slurmctld and slurmd on localhost,
# one partition "debug" holding this node with all its CPUs. For CI (tests/sweep_slurm_test.ts)
# and for trying `cli.ts sweep --slurm` without a cluster.
#
# Installs nothing. Needs Debian's packages (apt-get install -y slurm-wlm munge) and root. Writes
# /etc/slurm/slurm.conf (refusing to replace one it did not write), keeps state and logs in
# $REGULA_SLURM_STATE (default /var/lib/regula-slurm), and is idempotent: run again, it checks
# the daemons and starts what is missing. Ends with "slurm: ready" and exit 0, or a line saying
# what failed (with the daemons' log tails) and exit 1.
#
# Stop it with scripts/slurm/stop_local.sh.
set -uo pipefail

STATE="${REGULA_SLURM_STATE:-/var/lib/regula-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by regula scripts/slurm/start_local.sh"

fail() {
  echo "slurm: $*" >&2
  for f in "$STATE/slurmctld.log" "$STATE/slurmd.log" /var/log/munge/munged.log; do
    [[ -r "$f" && -s "$f" ]] && { echo "--- tail $f" >&2; tail -15 "$f" >&2; }
  done
  exit 1
}

[[ "$(id -u)" -eq 0 ]] || fail "must run as root (it starts munged, slurmctld and slurmd)"
for cmd in munged munge slurmctld slurmd sinfo scontrol sbatch; do
  command -v "$cmd" >/dev/null 2>&1 ||
    fail "'$cmd' not found: install the packages first: apt-get install -y slurm-wlm munge"
done

host="$(hostname -s)"
cpus="$(nproc)"
# RealMemory a little below the total, in MiB (slurmd drains a node that reports less).
mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"

# --- munge: a key, its run directory, the daemon (it refuses to run as root, so as 'munge').
mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile=/etc/munge/munge.key || fail "mungekey could not create a key"
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
if getent passwd munge >/dev/null; then
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
fi
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  if getent passwd munge >/dev/null; then
    runuser -u munge -- munged || fail "munged did not start"
  else
    munged --force || fail "munged did not start"
  fi
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n | unmunge >/dev/null 2>&1 || fail "munge does not answer after starting munged"
fi

# --- slurm.conf: one node (this one), one partition; no cgroups or accounting (containers).
if [[ -e "$CONF" ]] && ! grep -qF "$MARK" "$CONF"; then
  fail "$CONF exists and was not written by this script; move it away to use a local cluster"
fi
mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
conf="$MARK
ClusterName=regula
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP"
if [[ ! -e "$CONF" ]] || [[ "$(cat "$CONF")" != "$conf" ]]; then
  printf '%s\n' "$conf" >"$CONF"
  changed=1
fi

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive "$STATE/slurmctld.pid" && [[ -n "${changed:-}" ]]; then scontrol reconfigure || true; fi
alive "$STATE/slurmctld.pid" || slurmctld || fail "slurmctld did not start"
for _ in $(seq 30); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
scontrol ping 2>/dev/null | grep -q UP || fail "slurmctld does not answer (scontrol ping)"
alive "$STATE/slurmd.pid" || slurmd || fail "slurmd did not start"

# --- wait for the node to be usable; resume it if an earlier run left it down or drained.
for i in $(seq 60); do
  st="$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1)"
  case "$st" in
    idle* | mixed* | allocated* | completing*) echo "slurm: ready (node $host: $st, $cpus CPUs)"; exit 0 ;;
    down* | drain* | fail*) [[ $i -gt 4 ]] && scontrol update nodename="$host" state=resume 2>/dev/null ;;
  esac
  sleep 0.5
done
fail "node $host did not become idle (state '${st:-unknown}'; see 'scontrol show node $host')"
