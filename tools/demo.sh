#!/usr/bin/env bash
# The main job on the embedded default: everything runs offline on the CPU.
# It grows with the suite; today the data -> pretraining -> evaluation -> leaderboard path:
#   synthetic MIMIC-CXR, CheXpert and COVIDx in their native formats -> prepare ->
#   manifests -> PLACE (reconstruction) pretraining on the mmengine Runner -> suite
#   checkpoint -> embeddings -> per-query attention overlays (explain) -> linear probe,
#   fine-tune, zero-shot, retrieval and pathology probes (plus a random-init row),
#   segmentation (mmseg), detection (mmdet) and report generation ->
#   results registry -> leaderboard (Markdown here; HTML, CSV and PNG curves in the folder).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
out="${DEMO_DIR:-$repo/work/demo}"
pb() { echo; echo "+ place-bench $*"; "$venv/bin/place-bench" "$@"; }
mkdir -p "$out"
cd "$repo"

pb plugins
pb data synth --size tiny --out "$out/native" --datasets mimic_cxr chexpert covidx siim object_cxr iu_xray mimic_rrg
pb data prepare mimic_cxr --root "$out/native/mimic_cxr" --protocol mgca --out "$out/manifests"
pb data prepare mimic_5x200 --root "$out/native/mimic_cxr" --protocol suite --out "$out/manifests" --set n_per_class=8
pb data prepare chexpert --root "$out/native/chexpert" --protocol suite --out "$out/manifests" --set n_per_class=8 --set n_valid=10
pb data prepare chexpert_5x200 --root "$out/native/chexpert" --protocol suite --out "$out/manifests" --set n_per_class=8
pb data prepare covidx --root "$out/native/covidx" --protocol suite --out "$out/manifests"
pb data prepare siim --root "$out/native/siim" --protocol suite --out "$out/manifests"
pb data prepare object_cxr --root "$out/native/object_cxr" --protocol suite --out "$out/manifests"
pb data prepare iu_xray --root "$out/native/iu_xray" --protocol r2gen --out "$out/manifests"
pb data prepare mimic_rrg --root "$out/native/mimic_rrg" --protocol r2gen --out "$out/manifests" --set image_dir=../mimic_cxr/files
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

# Evaluation: every number lands in the results registry with its bootstrap interval.
results="$out/results"
m="$out/manifests"
ev() { pb eval "$@" --results "$results" --work-dir "$out/eval_work"; }
for subject in "$out/place/model.safetensors" eval/random_init_tiny_vit; do
  ev "$subject" --task cls_linear --dataset "$m/chexpert" "$m/covidx" --fractions 0.1 1 --seeds 0 1 2
done
ev "$out/place/model.safetensors" --task cls_finetune --dataset "$m/covidx" --fractions 1 --seeds 0 \
  --cfg-options task.max_iters=40 task.val_interval=10 task.num_workers=0 task.by_dataset.covidx.batch_size=16
ev "$out/place/model.safetensors" --task zeroshot --dataset "$m/chexpert_5x200" "$m/mimic_5x200"
ev "$out/place/model.safetensors" --task retrieval --dataset "$m/mimic_5x200"
ev "$out/place/model.safetensors" --task probes --dataset synthetic_probes:laterality_effusion \
  synthetic_probes:negation_effusion --seeds 0
# Dense tasks on the real mmsegmentation / mmdetection engines (a few iterations at this size).
ev "$out/place/model.safetensors" --task seg --dataset "$m/siim" "$m/object_cxr" --fractions 1 --seeds 0 \
  --cfg-options task.max_iters=20 task.val_interval=10 task.num_workers=0
ev "$out/place/model.safetensors" --task det --dataset "$m/object_cxr" --fractions 1 --seeds 0 \
  --cfg-options task.max_epochs=3 task.num_workers=0
# Report generation: a small decoder on the frozen encoder, NLG + clinical-efficacy metrics.
ev "$out/place/model.safetensors" --task rrg --dataset "$m/iu_xray" "$m/mimic_rrg" --seeds 0 \
  --cfg-options task.epochs=5 task.num_workers=0 task.decoder.num_layers=1 task.decoder.hidden_size=64 \
  task.decoder.num_heads=2 task.decoder.intermediate_size=128 task.decoder.visual_layers=0
pb leaderboard --results "$results" --out "$out/leaderboard"
echo
echo "demo finished: outputs in $out"
