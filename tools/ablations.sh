#!/usr/bin/env bash
# The model card's ablation rows: 3,000-step runs of the shipped recipe and of variants that each
# change one choice, then one table of every model's own spectrum on the same held-out scenes (plus
# SRP-PHAT). Two runs at a time, one torch thread each. Data: the cache `arraydaemon train` fills
# (generated on first use).
#   bash tools/ablations.sh [SCENES]
set -euo pipefail
cd "$(dirname "$0")/.."
AD=${ARRAYDAEMON:-arraydaemon}
OUT=training/ablation
SCENES=${1:-80}
mkdir -p "$OUT"
run() {  # name, extra train options...
    local name=$1; shift
    "$AD" train --fresh --steps 3000 --run "$OUT/$name" --out "$OUT/$name.safetensors" "$@" > "$OUT/$name.log" 2>&1
}
run energy --input gcc+energy & run baseline --input gcc; wait
run phase --input phase & run absolute --input gcc+energy --position absolute; wait
run nopretrain --input gcc+energy --no-pretrain
"$AD" eval --scenes "$SCENES" --integration 0 \
    --compare "shipped recipe: GCC-PHAT + energy-weighted GCC, relative positions, pretraining=$OUT/energy.safetensors" \
    --compare "GCC-PHAT only=$OUT/baseline.safetensors" \
    --compare "raw STFT phase input=$OUT/phase.safetensors" \
    --compare "absolute positions=$OUT/absolute.safetensors" \
    --compare "no clean-GCC pretraining=$OUT/nopretrain.safetensors" \
    --compare "shipped model=arraydaemon/data/neural.safetensors"
