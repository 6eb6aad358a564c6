#!/usr/bin/env bash
# The main job on the embedded default: everything runs offline on the CPU.
# `place-bench demo` runs the benchmark config benchmarks/demo_synthetic on the benchmark runner:
#   synthetic MIMIC-CXR, CheXpert, COVIDx, SIIM, Object-CXR, IU X-ray and R2Gen-MIMIC in their
#   native formats -> prepare -> manifests -> PLACE, MGCA, GLoRIA and ConVIRT pretraining on the
#   mmengine Runner (prepared MIMIC-CXR pairs) -> suite checkpoints -> linear probe, fine-tune,
#   zero-shot, retrieval and pathology probes (plus random-init and ImageNet-init rows),
#   segmentation (mmseg), detection (mmdet) and report generation -> results registry ->
#   leaderboard (Markdown here; HTML, CSV and PNG curves in the folder), then PLACE's per-query
#   attention overlays (explain). Re-running skips every finished unit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
out="${DEMO_DIR:-$repo/work/demo}"
pb() { echo; echo "+ place-bench $*"; "$venv/bin/place-bench" "$@"; }
mkdir -p "$out"
cd "$repo"

pb plugins
pb demo --out "$out"
