#!/usr/bin/env bash
# Start a real single-node SLURM on localhost (munge, slurmctld, slurmd with one fake GPU),
# run the SLURM integration test against it, and stop exactly the daemons started here.
# Needs root (as CI and the project's machines have) and Debian's slurm packages, which it
# installs when missing. Usage: bash tests/slurm/run.sh [pytest args]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing Debian's slurmctld slurmd slurm-client munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

dir=$(mktemp -d /tmp/vlm-slurm.XXXXXX)
mkdir -p "$dir"/{state,spool,log}
chmod 755 "$dir"
cleanup() {
    for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munge/munged.pid; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
    [ -n "${linked_conf:-}" ] && rm -f /etc/slurm/slurm.conf
    rm -rf "$dir"
}
trap cleanup EXIT

# munge: its own key and socket, so a munged the machine may already run is left alone
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
install -d -o munge -g munge "$dir/munge"
runuser -u munge -- /usr/sbin/munged --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed"

port=$((17000 + RANDOM % 2000))
cat > "$dir/slurm.conf" <<CONF
ClusterName=vlmtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$port
SlurmdPort=$((port + 1))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
# the test node promises more memory than the machine has, as the profile asks real sizes
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=64000 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
# a GPU "device" so that --gpus=1 jobs schedule; the GPU rule then runs on the CPU
printf 'AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null Count=1\n' > "$dir/gres.conf"
export SLURM_CONF=$dir/slurm.conf
# The jobstep plugin drops SLURM_* variables before its inner srun, so srun inside a job
# finds the configuration only at the default path: link it there for the test's duration
# (never over a real cluster's configuration).
if [ -e /etc/slurm/slurm.conf ]; then
    echo "/etc/slurm/slurm.conf exists: not touching a real SLURM configuration" >&2
    exit 1
fi
mkdir -p /etc/slurm
ln -s "$SLURM_CONF" /etc/slurm/slurm.conf
linked_conf=1
slurmctld
slurmd -N localhost
for _ in $(seq 30); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo
if [ -n "${SLURM_SHELL:-}" ]; then bash "$SLURM_SHELL"; exit; fi
timeout -k 10 600 "$python" -m pytest -q "$repo/tests/e2e/test_slurm.py" -p no:cacheprovider "$@"
