#!/usr/bin/env bash
# One GPU run that fine-tunes the Icon model for exemplar-conditioned generation (issue 24), time-boxed;
# weights (fp16 safetensors, split in < 4 MB parts for the device tool's $OUT) and the log go to $OUT.
# The corpus comes compact in $DATA: corpus.npz + corpus.json (python -m models.icon.data; 33 MB).
#   DATA=gpu_carry_icon OUT=out MIN=8 bash scripts/gpu_icon.sh
# Then here: cat out/icon.safetensors.part* > assets/icon/icon.safetensors; cp out/icon.json assets/icon/
# and judge it with bench/icon_quality.py --split dev before shipping (report --split test once).
set -u
PY=${PY:-$(command -v python3 || command -v python)}
DATA=${DATA:-gpu_carry_icon}
MIN=${MIN:-8}
OUT=${OUT:-runs/gpu_icon}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null | tail -1
$PY -m models.icon.train --data "$DATA/corpus.npz" --init assets/icon/icon.safetensors --exemplar-share 0.8 \
  --max-len 1024 --max-exemplar-tokens 320 --lr 3e-4 --min-lr 3e-5 --warmup 100 --max-steps 1000000 \
  --minutes "$MIN" --eval-every 300 --dropout 0.1 --tokens-per-batch ${TOKENS:-65536} \
  --run-dir /tmp/icon_run --out "$OUT/icon.safetensors" > "$OUT/icon.log" 2>&1
echo "icon exit $?"; grep "val" "$OUT/icon.log" | tail -4
cd "$OUT" && split -b 3900k -d icon.safetensors icon.safetensors.part && rm icon.safetensors && ls -la
