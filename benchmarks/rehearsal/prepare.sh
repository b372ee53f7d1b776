#!/usr/bin/env bash
# Build .gpu/ (git-ignored), which travels with the tree to the GPU machine, where
# nothing can be fetched: the cp312 wheels the machine lacks, upstream ComfyUI at the
# commit backend/deploy/image.py pins with both node packs, and the antelopev2 stand-ins.
#
# Needs git directories (bare is fine) of the three repositories, as
# tools/upstream-comfyui.sh does: COMFYUI_GIT (hiddenswitch's distribution,
# whose history holds upstream's commits), INSTANTID_GIT, PULID_GIT; and a Python with
# numpy, onnx and insightface for the stand-ins (STANDIN_PYTHON, default the one
# upstream-comfyui.sh set up).
# Usage: benchmarks/rehearsal/prepare.sh     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
G=.gpu; mkdir -p $G/whl
PY=${STANDIN_PYTHON:-/tmp/upcomfy/venv/bin/python}
pins=$(python3 -c "
import re, pathlib
s = pathlib.Path('backend/deploy/image.py').read_text()
get = lambda n: re.search(n + r' = \"([0-9a-f]{40})\"', s).group(1)
print(get('COMFYUI_COMMIT'), get('INSTANTID_COMMIT'), get('PULID_COMMIT'))")
read -r COMFY_C INST_C PULID_C <<<"$pins"
COMFY_C=${COMFYUI_COMMIT_OVERRIDE:-$COMFY_C}
echo "pins: ComfyUI $COMFY_C, InstantID $INST_C, PuLID $PULID_C"

# 1. Wheels for Python 3.12 on x86-64 (the GPU machine's), one version of each.
WHEELS=(
  alembic==1.20.1 annotated_types==0.8.0 av==19.0.2 blake3==1.0.11 comfy_aimdo==0.6.0
  comfy_kitchen==0.2.7 fastapi==0.165.0 greenlet==3.5.6 importlib_metadata==10.2.0 mako==1.4.3
  opentelemetry_api==1.45.2 pydantic==2.14.4 pydantic_core==2.50.5 pydantic_settings==2.16.3
  python_dotenv==1.2.4 python_multipart==0.0.34 simpleeval==1.0.8 spandrel==0.4.2
  sqlalchemy==2.1.9 starlette==1.10.0 torchsde==0.2.6 trampoline==0.1.2
  typing_inspection==0.4.5 uvicorn==0.54.0 websockets==17.4
  sse_starlette==3.7.0 sseclient_py==1.9.0 safetensors==0.8.0
  insightface==2.1 facexlib==0.3.0 filterpy==1.4.5 ftfy==6.3.1 wcwidth==0.2.13
)
for w in "${WHEELS[@]}"; do
  name=${w%%==*}
  ls $G/whl | grep -qi "^${name//_/[-_]}-" && continue
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --platform manylinux_2_5_x86_64 -d $G/whl "$w" 2>/dev/null \
  || python3 -m pip download -q --no-deps -d $G/whl "$w"   # a pure-Python sdist-only package
done
# filterpy has only an sdist (PyPI serves it as a .zip): build it into a wheel here, since
# the GPU machine installs .gpu/whl/*.whl only.
for s in $G/whl/*.tar.gz $G/whl/*.zip; do [ -e "$s" ] && python3 -m pip wheel -q --no-deps -w $G/whl "$s" && rm "$s"; done
ls $G/whl | grep -qi '^filterpy-.*\.whl$' || { echo "filterpy wheel missing in $G/whl"; exit 1; }

# 2. Upstream ComfyUI at the pinned commit, with the node packs (code only).
if [ ! -f $G/comfyui.tar.gz ] || [ "$(cat $G/comfyui.commit 2>/dev/null)" != "$COMFY_C $INST_C $PULID_C" ]; then
  T=$(mktemp -d)
  UPSTREAM_COMFYUI_DIR=$T COMFYUI_COMMIT=$COMFY_C INSTANTID_COMMIT=$INST_C PULID_COMMIT=$PULID_C \
    bash -c 'source <(sed -n "/^extract()/,/^}/p" tools/upstream-comfyui.sh)
             extract "$COMFYUI_GIT" "$COMFYUI_COMMIT" $UPSTREAM_COMFYUI_DIR/ComfyUI
             extract "$INSTANTID_GIT" "$INSTANTID_COMMIT" $UPSTREAM_COMFYUI_DIR/ComfyUI/custom_nodes/ComfyUI_InstantID
             extract "$PULID_GIT" "$PULID_COMMIT" $UPSTREAM_COMFYUI_DIR/ComfyUI/custom_nodes/ComfyUI_PuLID_Flux_ll'
  tar -czf $G/comfyui.tar.gz -C $T --exclude='ComfyUI/tests' --exclude='ComfyUI/tests-unit' \
      --exclude='*/examples' --exclude='.git*' ComfyUI
  echo "$COMFY_C $INST_C $PULID_C" > $G/comfyui.commit
  rm -rf "$T"
fi

cp tests/data/faces/obama_1.jpg $G/face.jpg  # the reference face for /flux-instantid

# 3. The antelopev2 stand-ins (marked as such inside each file).
$PY benchmarks/rehearsal/antelopev2_standins.py $G/antelopev2 >/dev/null

du -sh $G/whl $G/comfyui.tar.gz $G/antelopev2
echo "carry .gpu (total $(du -sh $G | cut -f1); the tree and carry must stay under 64 MiB)"
