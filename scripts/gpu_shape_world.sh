#!/usr/bin/env bash
# One GPU run that trains the 3D (ShapeGPT) and World (dynamics) models side by side on one card,
# each time-boxed; weights and logs go to $OUT. Data comes compact in $DATA:
#   shapes_*.npz (python -m models.shape.data) and train/eval_tokens.npz
#   (python -m models.world.train --pack DIR, after --stage tokens).
#   DATA=gpu_carry2 OUT=out MIN=8 bash scripts/gpu_shape_world.sh
set -u
PY=${PY:-$(command -v python3 || command -v python)}
DATA=${DATA:-gpu_carry2}
MIN=${MIN:-8}
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null | tail -1
$PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())"
$PY -m models.world.train --stage dynamics --data "$DATA" --out "$OUT/world_dynamics.safetensors" \
  --run-dir /tmp/world_run --fresh --steps 1000000 --batch ${WORLD_BATCH:-128} --lr 1.5e-3 \
  --d-model 160 --n-layer 6 --n-head 5 --prev-neighbours --threads 2 --minutes "$MIN" --save-every 1 \
  > "$OUT/world.log" 2>&1 &
WPID=$!
$PY -m models.shape.train --data "$DATA" --run-dir /tmp/shape_run --out "$OUT/shape.safetensors" \
  --steps 1000000 --batch ${SHAPE_BATCH:-16} --lr 1.5e-3 --warmup 200 --eval-every 200 --save-every 1000000 \
  --workers ${WORKERS:-11} --packed ${SHAPE_SIZE:---d-model 192 --n-layer 6 --n-head 6} --dropout 0.1 --minutes "$MIN" --threads 2 \
  > "$OUT/shape.log" 2>&1 &
SPID=$!
sleep 60; echo "--- after 60 s"; tail -2 "$OUT/world.log"; tail -2 "$OUT/shape.log"; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
wait $WPID; echo "world exit $?"; tail -3 "$OUT/world.log"
wait $SPID; echo "shape exit $?"; grep "eval step" "$OUT/shape.log" | tail -4
ls -la "$OUT"
