#!/usr/bin/env bash
# The model card's ablation rows: four 3,000-step runs that differ in one choice each, then one table
# of the model's own spectrum on the same held-out scenes (plus SRP-PHAT). Two runs at a time, one
# torch thread each. Data: the cache `arraydaemon train` fills (generated on first use).
#   bash tools/ablations.sh [SCENES]
set -euo pipefail
cd "$(dirname "$0")/.."
AD=${ARRAYDAEMON:-arraydaemon}
OUT=training/ablation
SCENES=${1:-80}
mkdir -p "$OUT"
run() {  # name, extra train options...
    local name=$1; shift
    "$AD" train --steps 3000 --run "$OUT/$name" --out "$OUT/$name.safetensors" "$@" > "$OUT/$name.log" 2>&1
}
run baseline & run absolute --position absolute; wait
run phase --input phase & run nopretrain --no-pretrain; wait
"$AD" eval --scenes "$SCENES" \
    --compare "relative positions, GCC-PHAT input, clean-GCC pretraining=$OUT/baseline.safetensors" \
    --compare "absolute positions=$OUT/absolute.safetensors" \
    --compare "raw STFT phase input=$OUT/phase.safetensors" \
    --compare "no clean-GCC pretraining=$OUT/nopretrain.safetensors" \
    --compare "shipped model=arraydaemon/data/neural.safetensors"
