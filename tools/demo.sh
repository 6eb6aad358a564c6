#!/usr/bin/env bash
# The main job on the embedded default: everything runs offline on the CPU.
# It grows with the suite; today: plugins -> config -> model with real local
# weights -> suite checkpoint -> strict reload -> embeddings of reports.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
out="${DEMO_DIR:-$repo/work/demo}"
pb() { echo "+ place-bench $*"; "$venv/bin/place-bench" "$@"; }
mkdir -p "$out"

pb plugins
pb config show eval/embed_demo
pb checkpoint init eval/embed_demo --out "$out/init.safetensors"
pb checkpoint show "$out/init.safetensors"
pb embed "$out/init.safetensors" \
  --text "Large right pleural effusion." "No acute cardiopulmonary process." \
         "Left lower lobe consolidation." "Cardiomegaly with pulmonary edema." \
  --out "$out/embeddings.safetensors"
