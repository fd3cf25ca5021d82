#!/usr/bin/env bash
# One call on a lent GPU machine (benchmarks/README.md, "DrQ(ε) on a GPU"): the CUDA tests, then DrQ(ε) Atari 100k
# runs with device=cuda, all at once, one process (one torch thread) per run, each cut at RUN_SECONDS.
# Usage there: RUN_SECONDS=480 bash benchmarks/gpu_atari100k.sh "Breakout 2" "MsPacman 1" ...
# Python packages the machine lacks travel as wheels in .whl/ (gpu_setup.sh).
# Results come back as $OUT/runs.tgz (each run's directory without checkpoints) and $OUT/summary.txt.
source "$(dirname "$0")/gpu_setup.sh"
RUNS=/tmp/runs
mkdir -p "$RUNS"
DEVICE=${DEVICE:-cuda}
n_runs=$#
start=$(date +%s)
pids=()
for spec in "$@"; do
    set -- $spec
    name="$1-seed$2"
    # checkpoint_every=0: a run here cannot be resumed after the call, and a replay checkpoint is ~0.7 GB
    timeout -k 30 "$RUN_SECONDS" python3 -m qlearn.cli.train experiment=drq_eps_atari100k env.id="$1NoFrameskip-v4" seed="$2" \
        device="$DEVICE" trainer.checkpoint_every=0 hydra.run.dir="$RUNS/$name" > "$RUNS/$name.log" 2>&1 &
    pids+=($!)
done
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_types.py \
    tests/buffers/test_frame_storage.py tests/buffers/test_replay.py 2>&1 | tail -15
for pid in "${pids[@]}"; do wait "$pid"; done
kill "$smi" 2>/dev/null
{
    echo "runs: $n_runs at once on $DEVICE, wall $(( $(date +%s) - start )) s, cut at $RUN_SECONDS s"
    for log in "$RUNS"/*.log; do echo "== $(basename "$log")"; grep -E "env step|qlearn-train|Error|error" "$log" | tail -3; done
} | tee "$OUT/summary.txt"
tar czf "$OUT/runs.tgz" -C "$RUNS" --exclude=checkpoints .
