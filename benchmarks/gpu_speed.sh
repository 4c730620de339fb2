#!/usr/bin/env bash
# The GPU half of the speed comparison, prepared to run as is on a fresh NVIDIA machine (H100/H200, sm_90) that has
# torch, transformers, accelerate and nvcc but no package registry (../shared/GPU.md). It measures, at the paper's
# sizes (Pythia-1B vs Mamba-790M, bfloat16):
#   1. Pythia-VL                                   -> $OUT/bench_pythia.json
#   2. Mamba-VL with our scan (no fused kernels)   -> $OUT/bench_mamba_fast.json
#   3. Mamba-VL with mamba-ssm's fused kernels      -> $OUT/bench_mamba_fused.json (after building them)
# Each result is written as soon as it exists, with a log line and the exit status, so a run cut short by the
# device's time limit keeps what it measured. The kernels compile on the CPU (limited to sm_90) while 1 and 2 run.
#
# Here, once (downloads the kernels' source archives into the ignored .sdist/ folder):
#     bash benchmarks/gpu_speed.sh --fetch
# On the device (the `run` tool of the tool library, which sets $OUT):
#     run(command="bash benchmarks/gpu_speed.sh", carry=[".sdist"], timeout_s=600)
# Smoke test on a CPU (tiny models, no kernel build):
#     BENCH_SIZE=tiny BENCH_DTYPE=float32 BENCH_CONTEXTS=1024 BENCH_EXTRA="--train-lengths 640 --repeats 1" \
#         OUT=/tmp/gpu-smoke bash benchmarks/gpu_speed.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAMBA_SDIST=mamba_ssm-2.3.2.post1.tar.gz
CONV_SDIST=causal_conv1d-1.7.0.tar.gz

if [ "${1:-}" = "--fetch" ]; then
    mkdir -p "$ROOT/.sdist"
    for pair in "mamba-ssm $MAMBA_SDIST" "causal-conv1d $CONV_SDIST"; do
        set -- $pair
        url=$(curl -fsS "https://pypi.org/simple/$1/" | grep -o "https://[^\"#]*/$2" | head -1)
        [ -n "$url" ] || { echo "no $2 on the index page of $1" >&2; exit 1; }
        curl -fsSL -o "$ROOT/.sdist/$2.part" "$url" && mv "$ROOT/.sdist/$2.part" "$ROOT/.sdist/$2"
    done
    ls -l "$ROOT/.sdist"
    exit 0
fi

OUT=${OUT:-$ROOT/gpu-results}
mkdir -p "$OUT"
cd "$ROOT"
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/log.txt"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')" > "$OUT/versions.txt" 2>&1
log "$(cat "$OUT/versions.txt")"

# 1 + 2 wait for nothing; the kernels build meanwhile on the CPU cores (nvcc only, the GPU stays free)
build_kernels() {
    local work whl
    work=$(mktemp -d)
    whl=$work/whl
    (cd "$work" && for f in "$ROOT"/.sdist/*.tar.gz; do tar xzf "$f"; done) || return 1
    # keep only the sm_90 -gencode pair in each setup.py (both H100 and H200 are sm_90)
    (cd "$work" && $PY - <<'PY'
import glob
import re

for path in glob.glob("*/setup.py"):
    text = open(path).read()
    text = re.sub(
        r'cc_flag\.append\("-gencode"\)\n(\s*)cc_flag\.append\("arch=compute_(?!90)\d+,code=sm_\d+"\)', "pass", text
    )
    open(path, "w").write(text)
PY
    ) || return 1
    export MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE MAX_JOBS=12 NVCC_THREADS=1
    (cd "$work" && $PY -m pip wheel --no-deps --no-build-isolation -w "$whl" ./causal_conv1d-*/) &
    local conv=$!
    (cd "$work" && $PY -m pip wheel --no-deps --no-build-isolation -w "$whl" ./mamba_ssm-*/) || return 1
    wait $conv || return 1
    $PY -m pip install --no-deps "$whl"/*.whl
}
if ls .sdist/"$MAMBA_SDIST" .sdist/"$CONV_SDIST" > /dev/null 2>&1; then
    (build_kernels > "$OUT/build.log" 2>&1; echo $? > "$OUT/build.rc") &
    BUILD=$!
    log "building the fused kernels in the background (log: build.log)"
else
    BUILD=
    log "no .sdist/$MAMBA_SDIST or .sdist/$CONV_SDIST: run 'bash benchmarks/gpu_speed.sh --fetch' here first"
fi

bench() {  # bench NAME ARGS...: one vlm bench run into $OUT/bench_NAME.json (written whole or not at all)
    local name=$1
    shift
    log "bench $name: $*"
    # shellcheck disable=SC2086  # BENCH_EXTRA is a list of options
    if $PY -m training.cli bench --size "${BENCH_SIZE:-1b}" --dtype "${BENCH_DTYPE:-bfloat16}" --json \
        --contexts "${BENCH_CONTEXTS:-1024,4096}" --no-demo-step ${BENCH_EXTRA:-} "$@" \
        > "$OUT/bench_$name.json.part" 2> "$OUT/bench_$name.err"; then
        mv "$OUT/bench_$name.json.part" "$OUT/bench_$name.json"
        log "bench $name done"
    else
        log "bench $name failed (see bench_$name.err)"
    fi
}

bench pythia --backbones pythia
bench mamba_fast --backbones mamba

if [ -n "$BUILD" ]; then
    wait "$BUILD"
    log "kernel build exit status $(cat "$OUT/build.rc" 2>/dev/null || echo '?')"
    if $PY -c "import mamba_ssm, causal_conv1d" >> "$OUT/log.txt" 2>&1; then
        bench mamba_fused --backbones mamba
    else
        log "the fused kernels do not import; no fused figures"
    fi
fi
log "finished"
