#!/usr/bin/env bash
# The whole GPU check for one lent-device session (shared/device.md: onnxruntime-gpu assembled and on
# PYTHONPATH first). Everything lands under $OUT; commit what comes back under benchmarks/results/gpu/.
# Budget: about 6 minutes on the H200. Prints a short table last.
# DEVICE=cpu SIZES=64 QUICK=64 bash benchmarks/gpu.sh  runs the same steps on the CPU in a minute, to test
# the script itself before spending device time on it.
set -u
export OUT=${OUT:-/tmp/nst-gpu}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-512,1024,2048}
QUICK=${QUICK:-512}
export DEVICE SIZES QUICK
mkdir -p "$OUT"
export NUMBA_CACHE_DIR=/tmp/numba-cache
log() { echo "== $*" | tee -a "$OUT/log.txt"; }

# nst installs under one import name; where it is not installed (the device has no network), build it from
# this tree without dependencies into a folder of its own.
if ! python3 -c "import nst.engine" 2>/dev/null; then
  python3 -m pip install -q --no-deps --no-build-isolation --target /tmp/nst-site . && export PYTHONPATH="/tmp/nst-site:${PYTHONPATH:-}"
fi

log "providers"
python3 -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.get_available_providers())" 2>&1 | tee -a "$OUT/log.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$OUT/log.txt"

log "nst bench: cuda, both paths, default options (node placement in the JSON)"
timeout 240 python3 -m nst bench --providers "$DEVICE" --sizes "$SIZES" --iterations 10 --warmup 3 \
  --json "$OUT/bench_cuda.json" --chart "$OUT/bench_cuda.png" 2>&1 | tee -a "$OUT/log.txt"

log "nst bench: cuda fused with Adam on the device (image, gradient and moments never leave the GPU)"
timeout 120 python3 -m nst bench --providers "$DEVICE" --paths fused --optimizer adam --sizes "$SIZES" \
  --iterations 10 --warmup 3 --json "$OUT/bench_cuda_adam.json" 2>&1 | tee -a "$OUT/log.txt"

for variant in "use_tf32=0" "cudnn_conv_algo_search=EXHAUSTIVE"; do
  log "nst bench: cuda fused with $variant"
  NST_CUDA_OPTIONS="$variant" timeout 90 python3 -m nst bench --providers "$DEVICE" --paths fused --sizes "$QUICK" \
    --iterations 10 --warmup 3 --json "$OUT/bench_cuda_${variant%%=*}.json" 2>&1 | tee -a "$OUT/log.txt"
done

for size in ${SIZES//,/ }; do
  log "PyTorch eager against nst on $DEVICE at $size px"
  timeout 120 python3 -m benchmarks.torch_compare --device "$DEVICE" --size "$size" --rounds 3 --round 10 \
    --out "$OUT/torch_compare_cuda_$size.json" 2>&1 | grep -E "^round|Error|error" | tee -a "$OUT/log.txt"
done

log "result difference, TF32 on and off (50 iterations, $QUICK px)"
timeout 120 python3 - <<'PY' 2>&1 | tee -a "$OUT/log.txt"
import json, os, subprocess, sys
code = ("import sys, json, numpy as np\n"
        "from nst import StyleTransfer\n"
        f"st = StyleTransfer(device={os.environ['DEVICE']!r}); seen = []\n"
        "x = st.stylize('examples/woman-with-hat-matisse.jpg', ['examples/starry_night.jpg'], preset='johnson', "
        f"size={os.environ['QUICK']},"
        " iterations=50, callback=lambda p: seen.append(p.losses['loss']))\n"
        "np.save(sys.argv[1], x); print(json.dumps({'loss': seen[-1]}))")
rows = {}
for name, opt in (("tf32_on", "use_tf32=1"), ("tf32_off", "use_tf32=0")):
    env = dict(os.environ, NST_CUDA_OPTIONS=opt)
    out = subprocess.run([sys.executable, "-c", code, f"/tmp/{name}.npy"], env=env, capture_output=True, text=True)
    rows[name] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-300:]}
import numpy as np
if all("loss" in r for r in rows.values()):
    a, b = np.load("/tmp/tf32_on.npy"), np.load("/tmp/tf32_off.npy")
    rows["max_pixel_difference"] = float(np.abs(a - b).max())
    rows["mean_pixel_difference"] = float(np.abs(a - b).mean())
print(json.dumps(rows))
json.dump(rows, open(os.path.join(os.environ["OUT"], "tf32_quality.json"), "w"), indent=2)
PY

log "summary"
python3 - <<'PY' 2>&1 | tee -a "$OUT/log.txt"
import json, os
out = os.environ["OUT"]
for name in sorted(os.listdir(out)):
    if name.startswith("bench_cuda") and name.endswith(".json"):
        report = json.load(open(os.path.join(out, name)))
        for r in report["rows"]:
            if "median_s" in r:
                off = {p: n for p, n in r["placement"].items() if p != "CUDAExecutionProvider"}
                print(f"{name:32} {r['path']:6} {r['size']:5} {1000 * r['median_s']:8.1f} ms {r['gflop_per_s']:8.0f} GFLOP/s "
                      f"gpu {r['peak_gpu_mb'] or 0:7.0f} MB  off-GPU nodes {sum(sum(v.values()) for v in off.values())}")
            else:
                print(f"{name:32} {r['path']:6} {r['size']:5} failed: {r.get('error')}")
    if name.startswith("torch_compare_cuda"):
        t = json.load(open(os.path.join(out, name)))
        print(name, {k: round(1000 * v["median_s"], 1) for k, v in t["seconds_per_iteration"].items()}, "ms")
PY
