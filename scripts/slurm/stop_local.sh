#!/usr/bin/env bash
# Stops what scripts/slurm/start_local.sh started (slurmd, slurmctld; munged only with --munge).
set -uo pipefail
STATE="${REGULA_SLURM_STATE:-/var/lib/regula-slurm}"
for d in slurmd slurmctld; do
  f="$STATE/$d.pid"
  if [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; then kill "$(cat "$f")" && echo "stopped $d"; fi
done
if [[ "${1:-}" == "--munge" && -s /run/munge/munged.pid ]]; then
  kill "$(cat /run/munge/munged.pid)" && echo "stopped munged"
fi
