#!/usr/bin/env bash
# Create .venv and install the pinned OpenMMLab stack (mmengine, mmcv, mmdet,
# mmpretrain, mmsegmentation) plus ltm_mm (editable).
#
# Idempotent: a stamp records the hash of the inputs that decide the install;
# when it matches and the stack imports, the script returns in seconds.
#
# mmcv 2.1.0 ships only as an sdist that does not compile against torch >= 2.10
# as released (torch's headers need C++20, mmcv's setup.py forces -std=c++17).
# We build it with the flag switched, once, and cache the wheel outside the
# repository, keyed by mmcv/torch/python/platform (and CUDA when FORCE_CUDA=1).
# A matching prebuilt wheel in ../shared/wheels is used instead when present.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY_BOOTSTRAP="${PYTHON:-python3.11}"
PINS="$ROOT/requirements/pins.txt"
TEST_REQS="$ROOT/requirements/tests.txt"
STAMP="$VENV/.ltm_mm_setup_stamp"
CACHE_ROOT="${LTM_MM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ltm_mm}"
SHARED_WHEELS="${LTM_MM_SHARED_WHEELS:-$ROOT/../shared/wheels}"

pin() { grep -E "^$1==" "$PINS" | head -n1 | cut -d= -f3; }
log() { printf '[setup] %s\n' "$*"; }

stamp_value() {
    cat "$PINS" "$TEST_REQS" "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1
    echo "FORCE_CUDA=${FORCE_CUDA:-0}"
}

stack_imports() {
    "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import mmcv.ops, mmdet, mmpretrain, mmseg, mmengine, pycocotools, ltm_mm  # noqa: F401
import onnx, onnxruntime, onnxscript  # noqa: F401
PY
}

if [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$(stamp_value)" ]] && stack_imports; then
    log "environment up to date ($VENV)"
    exit 0
fi

if ! command -v "$PY_BOOTSTRAP" >/dev/null 2>&1; then
    echo "[setup] error: $PY_BOOTSTRAP not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $PY_BOOTSTRAP"
    "$PY_BOOTSTRAP" -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install --disable-pip-version-check -q)
PYV="$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
if [[ "$PYV" != "cp311" ]]; then
    echo "[setup] error: $VENV runs $PYV but the stack is pinned for Python 3.11; remove $VENV and rerun" >&2
    exit 1
fi

log "installing build tools and torch $(pin torch) / torchvision $(pin torchvision)"
"${PIP[@]}" "setuptools==$(pin setuptools)" wheel ninja psutil \
    "torch==$(pin torch)" "torchvision==$(pin torchvision)"

MMCV_VERSION="$(pin mmcv)"
TORCH_VERSION="$(pin torch)"
ARCH="$(uname -m)"
CUDA_TAG=""
[[ "${FORCE_CUDA:-0}" == "1" ]] && CUDA_TAG="_cuda"
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PYV}_${ARCH}${CUDA_TAG}"
WHEEL_DIR="$CACHE_ROOT/wheels/$KEY"

mmcv_ok() {
    "$VENV/bin/python" - "$MMCV_VERSION" <<'PY' >/dev/null 2>&1
import sys, mmcv, mmcv.ops  # mmcv.ops imports the compiled extension
from mmcv.ops import nms  # noqa: F401
assert mmcv.__version__ == sys.argv[1]
PY
}

find_wheel() {
    local shared="$SHARED_WHEELS/mmcv-${MMCV_VERSION}-${PYV}-${PYV}-linux_${ARCH}.whl"
    if [[ -z "$CUDA_TAG" && "$TORCH_VERSION" == "2.14.1" && -f "$shared" ]] \
        && (cd "$SHARED_WHEELS" && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); then
        echo "$shared"; return
    fi
    ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null | head -n1 || true
}

build_mmcv_wheel() {
    local work; work="$(mktemp -d)"
    log "building mmcv $MMCV_VERSION with compiled ops (about 10 min on 2 cores); cache: $WHEEL_DIR"
    "$VENV/bin/pip" download --disable-pip-version-check -q --no-deps --no-binary :all: \
        --no-build-isolation -d "$work" "mmcv==$MMCV_VERSION"
    tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
    # torch >= 2.10 headers require C++20; mmcv's setup.py appends -std=c++17 last.
    sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$WHEEL_DIR"
    (cd "$work/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" \
        CFLAGS="-Wsign-compare -DNDEBUG -g0 -fwrapv -O3 -Wall" \
        "$VENV/bin/pip" wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
        -w "$WHEEL_DIR" .)
    rm -rf "$work"
}

if mmcv_ok; then
    log "mmcv $MMCV_VERSION with ops already installed"
else
    wheel="$(find_wheel)"
    if [[ -z "$wheel" ]]; then
        build_mmcv_wheel
        wheel="$(find_wheel)"
    fi
    log "installing $(basename "$wheel")"
    "${PIP[@]}" --force-reinstall --no-deps "$wheel"
fi

log "installing mmengine, mmdet, mmpretrain, mmsegmentation, pycocotools, onnx, onnxruntime and test tools"
# mmcv is listed so pip keeps the compiled wheel we just installed.
"${PIP[@]}" "setuptools==$(pin setuptools)" "mmcv==$MMCV_VERSION" \
    "mmengine==$(pin mmengine)" "mmdet==$(pin mmdet)" "mmpretrain==$(pin mmpretrain)" \
    "mmsegmentation==$(pin mmsegmentation)" "ftfy==$(pin ftfy)" "regex==$(pin regex)" \
    pycocotools "onnx==$(pin onnx)" "onnxruntime==$(pin onnxruntime)" \
    "onnxscript==$(pin onnxscript)" \
    "torch==$(pin torch)" "torchvision==$(pin torchvision)" -r "$TEST_REQS"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

if ! mmcv_ok || ! stack_imports; then
    echo "[setup] error: the stack does not import after installation; see the messages above" >&2
    exit 1
fi
stamp_value > "$STAMP"
log "done: $VENV"
