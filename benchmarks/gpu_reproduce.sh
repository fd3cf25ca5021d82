#!/usr/bin/env bash
# One call on a lent GPU machine: several qlearn-reproduce commands at once, each cut at RUN_SECONDS.
# Usage there: RUN_SECONDS=480 bash benchmarks/gpu_reproduce.sh "iqn_cartpole: iqn_cartpole --seeds 3 device=cuda" ...
# (each argument is "<report name>: <qlearn-reproduce arguments>"). Python packages the machine lacks travel as
# wheels in .whl/ (see gpu_atari100k.sh); matplotlib is not among them, so the PNG curves and the final report
# are written afterwards with `qlearn-report` on a machine that has it.
# Results come back as $OUT/reports.tgz (each report directory without checkpoints) and $OUT/summary.txt.
set -u
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/gpu_out}
REPORTS=/tmp/reports
mkdir -p "$OUT" "$REPORTS"
RUN_SECONDS=${RUN_SECONDS:-480}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 20 > "$OUT/smi.csv" 2>&1 &
smi=$!
start=$(date +%s)
pids=()
for spec in "$@"; do
    name="${spec%%:*}"
    # shellcheck disable=SC2086  # the arguments after the colon are meant to split
    timeout -k 30 "$RUN_SECONDS" python3 -m qlearn.cli.reproduce ${spec#*:} --out "$REPORTS/$name" \
        > "$REPORTS/$name.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
kill "$smi" 2>/dev/null
{
    echo "reports: $# at once, wall $(( $(date +%s) - start )) s, cut at $RUN_SECONDS s"
    for log in "$REPORTS"/*.log; do echo "== $(basename "$log")"; tail -4 "$log"; done
    for train in "$REPORTS"/*/runs/*/train.log; do echo "== $train"; tail -2 "$train"; done
} | tee "$OUT/summary.txt"
tar czf "$OUT/reports.tgz" -C "$REPORTS" --exclude=checkpoints .
