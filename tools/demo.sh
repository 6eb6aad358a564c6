#!/usr/bin/env bash
# The main job on the embedded default: everything runs offline on the CPU.
# It grows with the suite; today the whole data -> pretraining -> checkpoint path:
#   synthetic MIMIC-CXR in its native format -> prepare -> manifest -> PLACE
#   (reconstruction) pretraining on the mmengine Runner -> suite checkpoint ->
#   embeddings -> per-query attention overlays (explain).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
out="${DEMO_DIR:-$repo/work/demo}"
pb() { echo; echo "+ place-bench $*"; "$venv/bin/place-bench" "$@"; }
mkdir -p "$out"
cd "$repo"

pb plugins
pb data synth --size tiny --out "$out/native" --datasets mimic_cxr
pb data prepare mimic_cxr --root "$out/native/mimic_cxr" --protocol mgca --out "$out/manifests"
pb data inspect "$out/manifests/mimic_cxr"
manifest="$out/manifests/mimic_cxr/mgca.parquet"
overrides=(data.train.source=None "data.train.manifest=$manifest")
pb config show pretrain/place_synthetic --cfg-options "${overrides[@]}"
pb pretrain pretrain/place_synthetic --work-dir "$out/place" --cfg-options "${overrides[@]}"
pb checkpoint show "$out/place/model.safetensors"
mapfile -t images < <(find "$out/native/mimic_cxr/files" -name '*.jpg' | sort | head -n 4)
pb embed "$out/place/model.safetensors" --image "${images[@]}" \
  --text "Large right pleural effusion." "No acute cardiopulmonary process." \
         "Left lower lobe consolidation." "Moderate cardiomegaly with pulmonary edema." \
  --out "$out/embeddings.safetensors"
report="$(dirname "${images[0]}").txt"
pb explain "$out/place/model.safetensors" --image "${images[0]}" --report "$(cat "$report")" --out "$out/explain"
echo
echo "demo finished: outputs in $out"
