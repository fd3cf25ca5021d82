# Sourced by the scripts run on a lent GPU machine (gpu_atari100k.sh, gpu_reproduce.sh): installs the wheels in
# .whl/ (packages the machine lacks: gymnasium, ale-py, hydra-core, omegaconf, antlr4, joblib, the joblib
# launcher), puts qlearn on the path, prints the machine and starts sampling GPU use into $OUT/smi.csv ($smi: its pid).
set -u
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
OUT=${OUT:-/tmp/gpu_out}
RUN_SECONDS=${RUN_SECONDS:-480}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 20 > "$OUT/smi.csv" 2>&1 &
smi=$!
