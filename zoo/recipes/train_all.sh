#!/usr/bin/env bash
# Retrain every bundled model from its recipe, in dependency order (the latent models need the VAE, mnist-flow-pd
# its teacher mnist-flow, mnist-flow-pd-reflow both).
# Usage: bash zoo/recipes/train_all.sh [--device cuda]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
for name in mnist-vae-2d mnist-lenet mnist-latent-cond mnist-latent-guide mnist-ddpm-linear mnist-v-cosine mnist-flow \
  mnist-flow-pd mnist-flow-pd-reflow mnist-cond-cfg mnist-cond-guide; do
  rm -rf "zoo/bundled/$name"
  "$PY" -m zoo train "$name" --out "zoo/bundled/$name" "$@"
  "$PY" -m zoo pin "$name"
done
echo "Now run: $PY -m bench.zoo_quality --write-cards; --ladder --write-cards; --only mnist-flow-pd mnist-flow-pd-reflow --samples 1000 --write-cards"
