#!/usr/bin/env bash
# One call on a lent GPU machine: several qlearn-reproduce commands at once, each cut at RUN_SECONDS.
# Usage there: RUN_SECONDS=480 bash benchmarks/gpu_reproduce.sh "iqn_cartpole: iqn_cartpole --seeds 3 device=cuda" ...
# (each argument is "<report name>: <qlearn-reproduce arguments>"). Python packages the machine lacks travel as
# wheels in .whl/ (gpu_setup.sh); matplotlib for the PNG curves is the machine's own (it had it on 2026-12-04).
# Results come back as $OUT/reports.tgz (each report directory without checkpoints) and $OUT/summary.txt.
source "$(dirname "$0")/gpu_setup.sh"
REPORTS=/tmp/reports
mkdir -p "$REPORTS"
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
