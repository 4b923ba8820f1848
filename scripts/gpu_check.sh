#!/usr/bin/env bash
# The CUDA execution-provider check, for a lent GPU machine (see docs/GPU_CHECK.md).
#
#   scripts/gpu_check.sh prepare     here: fetch onnxruntime-gpu (the Python package with its
#                                    libraries), build tabssl, pack both into .gpu/
#   scripts/gpu_check.sh stage FILE  there: move one carried piece to /root/stage
#   scripts/gpu_check.sh run         there: unpack, then check CUDA vs CPU and measure rows/s
#
# `run` also works here for a rehearsal: with no GPU it runs the CPU half and reports that
# the CUDA provider is unavailable.
set -euo pipefail
cd "$(dirname "$0")/.."

ORT_VERSION=1.31.1
PACK=.gpu
STAGE=${TABSSL_GPU_STAGE:-/root/stage}
OUT=${OUT:-target/gpu-check}

prepare() {
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    rm -rf "$PACK" && mkdir -p "$PACK/work"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 --dest "$PACK/work" "onnxruntime-gpu==$ORT_VERSION"
    # The whole onnxruntime package (minus TensorRT): tabssl loads its library, and the raw
    # Python comparison imports it, so both sides run the same build.
    python3 - "$PACK/work" <<'PY'
import glob, os, sys, zipfile
work = sys.argv[1]
with zipfile.ZipFile(glob.glob(os.path.join(work, "*.whl"))[0]) as z:
    for name in z.namelist():
        if name.startswith("onnxruntime/") and not name.endswith("/") and "tensorrt" not in name:
            target = os.path.join(work, "ortpy", name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(z.read(name))
PY
    cargo build --bin tabssl
    cp target/debug/tabssl "$PACK/work/tabssl" && strip "$PACK/work/tabssl"
    tar -C "$PACK/work" -cf - tabssl ortpy | zstd -19 --long=27 -T0 -q -o "$PACK/bundle.tar.zst"
    split -b 48M -d "$PACK/bundle.tar.zst" "$PACK/piece-"
    rm -rf "$PACK/work" "$PACK/bundle.tar.zst"
    ls -la "$PACK"
    echo "carry each $PACK/piece-NN in its own 'stage' call, then call 'run' (see docs/GPU_CHECK.md)"
}

stage() {
    mkdir -p "$STAGE"
    mv "$1" "$STAGE/"
    ls -la "$STAGE"
}

run_check() {
    mkdir -p "$OUT"
    local bin=target/debug/tabssl
    if ls "$STAGE"/piece-* >/dev/null 2>&1; then
        mkdir -p "$STAGE/ort"
        cat "$STAGE"/piece-* | zstd -d --long=27 -q | tar -C "$STAGE/ort" -xf -
        export ORT_DYLIB_PATH="$STAGE/ort/ortpy/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
        export PYTHONPATH="$STAGE/ort/ortpy${PYTHONPATH:+:$PYTHONPATH}"
        bin="$STAGE/ort/tabssl"
    fi
    # No LD_LIBRARY_PATH: tabssl finds CUDA 13 and cuDNN 9 itself (here, in the machine's
    # nvidia-* Python packages) and logs which it loaded.
    export RUST_LOG=${RUST_LOG:-info}
    local rows=500000
    "$bin" sql --format csv -c "SELECT $(python3 -c "import json; print(', '.join('\"%s\"' % i['name'] \
        for i in json.load(open('models/adult_pca.json'))['inputs']))") FROM tabssl_synthetic($rows, 1)" \
        > "$OUT/rows.csv" 2>/dev/null
    {
        echo "== $(date -u) on $(hostname)"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
        echo "== providers in use (cuda must say cuda:0, not cpu)"
        "$bin" sql --models models --format csv -c "SET tabssl.provider = 'cuda'" \
            -c "SELECT name, provider FROM tabssl_models()" 2>&1 || echo "CUDA provider unavailable"
        echo "== CPU vs CUDA: rows/s per batch size, agreement within 1e-4"
        "$bin" bench --models models --model adult_pca --rows $rows --batch-sizes 1024,8192,65536 \
            --providers cpu,cuda --repeat 3 2>&1 | tee "$OUT/bench.log" || echo "bench failed"
        echo "== onnxruntime alone in Python, same model, rows and device; tabssl / raw"
        python3 scripts/gpu_raw_ort.py --csv "$OUT/rows.csv" --model models/adult_pca.onnx \
            --manifest models/adult_pca.json --bench-log "$OUT/bench.log" 2>&1 || echo "raw ORT failed"
    } | tee "$OUT/gpu_check.log"
}

case "${1:-}" in
    prepare) prepare ;;
    stage) stage "${2:?stage needs the piece to move}" ;;
    run) run_check ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
esac
