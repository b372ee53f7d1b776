#!/usr/bin/env bash
# The GPU rehearsal: upstream ComfyUI at the pinned commit with both node packs, this
# backend started the way backend/modal_app.py starts it, random-weight model files of the
# real architectures for every pipeline, and every route requested through ryla's client.
# Run on the GPU machine from the repository root, with .gpu/ (benchmarks/rehearsal/prepare.sh)
# carried. Steps (several may follow each other in one call):
#   rehearse.sh setup [disk]                   wheels, ComfyUI, weights (~2.5 min, once per machine);
#                                              `disk`: Flux Dev, T5, CLIP and ae only (~1 min)
#   rehearse.sh probe                          compiler, kernels (SDPA backends, fp8 matmul)
#   rehearse.sh compileall                     byte-compile ComfyUI and the wheels, as an image build does
#   rehearse.sh startup [warm] [COMFYUI ARGS...]  where ComfyUI's start goes (import times),
#                                              page cache dropped (`warm`: not dropped)
#   rehearse.sh routes MODE [ARGS...]          cold start + every route
#   rehearse.sh mixed MODE [ARGS...]           the mixed Dev/Schnell/LoRA/PuLID sequence
#   rehearse.sh mixed-fast MODE [ARGS...]      the same, each round ending with Dev in fast mode
#   rehearse.sh fast MODE [ARGS...]            Flux Dev in bf16 and in fp8 (fp8_e4m3fn_fast)
#   rehearse.sh fp8-files                      swap the disk's bf16 Flux Dev for the fp8 copies
#   rehearse.sh cold-fp8 MODE [ARGS...]        cold start whose first request reads the fp8 copies
#   rehearse.sh compile MODE [ARGS...]         fast mode with torch.compile: compile once, then
#                                              again in a new ComfyUI from inductor's cache
#   rehearse.sh fast-mode MODE [ARGS...]       the same through the product's `mode: fast` on
#                                              /flux-dev, beside standard Dev and Schnell requests
#   rehearse.sh fast-mode-once MODE [ARGS...]  its first phase only (e.g. --warm-up=flux-dev,flux-dev-fast)
#   rehearse.sh cold MODE [ARGS...]            a cold start's first two Flux Dev images
#   rehearse.sh felt MODE [ARGS...]            felt latency: Flux Dev clicked 20 s after the studio
#                                              opened, on a cold stack without and with POST /warm
#   rehearse.sh jobs MODE [ARGS...]            issue 22: warm Flux Dev 1024/28 through the sync route
#                                              and the async path (submit, events, outputs), then a
#                                              PuLID sheet of 7 submitted at once (~1.5 min), on the
#                                              stack already running (e.g. the one `routes` left, every
#                                              model loaded), else on a new one started with ARGS
#   rehearse.sh previews MODE [ARGS...]        `jobs` (previews on: the deployment's taesd, latent2rgb
#                                              without a TAESD decoder), then the same stack's arguments
#                                              plus --preview-method none (page cache kept) and the Flux
#                                              Dev half again (~1.2 min more); prints both together
#   rehearse.sh issue22 MODE [ARGS...]         setup (unless done on this machine), routes, previews:
#                                              issue 22's figures in one call (~9.5 min on an H200)
# JOBS_REPEAT (3: Flux Dev requests per path) and JOBS_SHEET (7: the sheet's images) trim `jobs`.
# MODE names the run's settings in the results; ARGS are ComfyUI arguments, plus
# --prefetch=PIPELINE and --warm-up=PIPELINE for the stack (backend/warmup.py).
# Each run writes $OUT/<date>-<gpu>-<step>-<MODE>.json; logs go to $OUT/log-<step>-<MODE>.txt.
set -u; export PYTHONUNBUFFERED=1; T0=$(date +%s.%N)
O=${OUT:-/tmp/out}; mkdir -p "$O"
W=/tmp/rehearsal; C=$W/cu/ComfyUI; M=$C/models; X=/dev/shm/ryla-models; L=$W/loras
export PYTHONPATH=/tmp/site:$PWD RYLA_API_TOKEN=rehearsal
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
GPU_SLUG=$(echo "$GPU" | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-' | sed 's/nvidia-//')
since() { python3 -c "import time; print(round(time.time() - $1, 1))"; }
drop_cache() { sync; echo 3 > /proc/sys/vm/drop_caches && echo "page cache dropped"; }

setup() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
  mkdir -p $W/cu $L && tar -xzf .gpu/comfyui.tar.gz -C $W/cu
  mkdir -p $M/insightface/models && cp -r .gpu/antelopev2 $M/insightface/models/   # stand-ins
  python3 -m backend.nodepack_patches $C/custom_nodes || exit 1   # as the Modal image does
  t0=$(date +%s.%N)
  # Flux Dev and its encoders on the disk (the cold start reads them); the rest in RAM.
  python3 benchmarks/rehearsal/make_weights.py $C $M \
     --only flux1-dev.safetensors,t5xxl_fp16.safetensors,clip_l.safetensors,ae.safetensors > $W/weights-disk.txt 2>&1 &
  [ "${1:-}" = disk ] || python3 benchmarks/rehearsal/make_weights.py $C $M --extra-dir $X --lora-out $W/lora-a.safetensors \
     --only flux1-schnell.safetensors,sd_xl_base_1.0.safetensors,instantid_controlnet.safetensors,ip-adapter.bin,pulid_flux_v0.9.1.safetensors,EVA02_CLIP_L_336_psz14_s6B.pt,detection_Resnet50_Final.pth,parsing_bisenet.pth,wan2.1_t2v_1.3B_fp16.safetensors,umt5_xxl_fp8_e4m3fn_scaled.safetensors,wan_2.1_vae.safetensors,z_image_turbo_bf16.safetensors,qwen_3_4b.safetensors \
     > $W/weights-ram.txt 2>&1
  wait
  grep -l Traceback $W/weights-*.txt && { tail -20 $W/weights-*.txt; exit 1; }
  [ -f $W/lora-a.safetensors ] && cp $W/lora-a.safetensors $W/lora-b.safetensors
  echo "weights written in $(since $t0) s"; df -h /tmp /dev/shm | tail -2
  mkdir -p $W/fe && echo "<html></html>" > $W/fe/index.html
  touch $W/.setup-done
}

stop_stack() { pkill -f benchmarks.rehearsal.stack; pkill -f "$C/main.py"; sleep 3; }

start_stack() { # $1 label, rest: ComfyUI arguments (--prefetch*=, --warm-up= go to stack.py)
  local label=$1; shift
  local extra=(); for a in "$@"; do case $a in --prefetch=*|--prefetch-threads=*|--prefetch-chunk-mb=*|--warm-up=*) extra+=("$a");; *) extra+=("--comfyui-arg=$a");; esac; done
  rm -rf $W/data
  echo "$label" > $W/stack.label   # what later steps on this stack name it by, and its arguments
  if [ $# -gt 0 ]; then printf '%s\n' "$@" > $W/stack.args; else : > $W/stack.args; fi
  (setsid nohup python3 -m benchmarks.rehearsal.stack --comfyui-dir $C --lora-dir $L \
     --data-dir $W/data --port 8000 --front-end-root $W/fe --log $W/comfy-$label.log "${extra[@]}" \
     < /dev/null > $W/stack-$label.out 2>&1 &)
  for i in $(seq 1 1200); do grep -q comfyui_ready_s $W/stack-$label.out 2>/dev/null && break
    pgrep -f benchmarks.rehearsal.stack >/dev/null || break; sleep 0.25; done
  head -1 $W/stack-$label.out | grep -q comfyui_ready_s \
    || { echo "stack did not start"; tail -n 30 $W/stack-$label.out $W/comfy-$label.log; return 1; }
  echo "$label: $(head -1 $W/stack-$label.out | cut -c1-400)"
}

results() { echo "$O/$(date +%F)-$GPU_SLUG-$1-$2.json"; }  # $1 name, $2 mode

drive() { # $1 name, $2 mode, rest: measure.py arguments; against the running stack
  local name=$1 mode=$2 label; shift 2; label=$(cat $W/stack.label)
  python3 -m benchmarks.rehearsal.measure --backend-url http://127.0.0.1:8000 --gpu "$GPU" \
     --stack-figures $W/stack-$label.out --reference .gpu/face.jpg --mode "$mode" \
     --out "$(results $name $mode)" "$@" | grep -v '^{'
  rm -f "$(results $name $mode)l"   # the .jsonl kept while it ran, in case it is cut short
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
  { cat $W/stack-$label.out | head -1
    grep -E "Prompt executed|Requested to load|loaded completely|loaded partially|Unloaded|Error|error|Traceback|Import times|seconds" $W/comfy-$label.log | tail -120
  } > $O/log-$name-$mode.txt
  echo "== $name $mode done, $(since $T0) s into this call"
}

measure() { # $1 step, $2 mode, rest: stack arguments; a new stack, page cache dropped
  local step=$1 mode=$2; shift 2
  stop_stack; drop_cache
  start_stack $step-$mode "$@" || return 1
  local loras=(); for f in $W/lora-a.safetensors $W/lora-b.safetensors; do [ -f $f ] && loras+=(--lora $f); done
  drive $step "$mode" --phase $step "${loras[@]}"
}

JOBS=(--phase jobs --repeat "${JOBS_REPEAT:-3}" --comfyui-url http://127.0.0.1:8188)

jobs_step() { # $1 mode, rest: stack arguments, used only when no stack is running (warm figures:
  # no cold start needed, so the page cache is kept)
  local mode=$1; shift
  if ! pgrep -f benchmarks.rehearsal.stack > /dev/null; then start_stack jobs-$mode "$@" || return 1; fi
  echo "jobs on the stack $(cat $W/stack.label) ($(tr '\n' ' ' < $W/stack.args))"
  drive jobs "$mode" "${JOBS[@]}" --sheet-images "${JOBS_SHEET:-7}"
}

previews_off() { # $1 mode: the running stack's arguments plus --preview-method none (the later
  # argument wins), page cache kept; Flux Dev's half of the jobs phase, then both runs' summary
  local mode=$1 args; mapfile -t args < $W/stack.args
  stop_stack; start_stack jobs-previews-off-$mode "${args[@]}" --preview-method none || return 1
  drive jobs-previews-off "$mode" "${JOBS[@]}" --sheet-images 0
  python3 -m benchmarks.rehearsal.summarize --jobs "$(results jobs $mode)" "$(results jobs-previews-off $mode)"
}

case "${1:-}" in
setup) shift; setup "$@" ;;
probe)
  for c in gcc cc clang criu; do echo "$c: $(command -v $c || echo absent)"; done
  python3 -c "import sysconfig, os; h = sysconfig.get_paths()['include']; print('Python.h:', os.path.exists(h + '/Python.h'), h)"
  python3 -c "import triton; print('triton', triton.__version__)"
  python3 -m benchmarks.rehearsal.kernels ;;
compileall)  # the image build byte-compiles; pip here installed with --no-compile
  t0=$(date +%s.%N)
  python3 -m compileall -q -j 0 /tmp/site $C > /dev/null 2>&1
  echo "byte-compiled /tmp/site and ComfyUI in $(since $t0) s" ;;
startup)  # where ComfyUI's start goes: import times with the page cache dropped
  shift; if [ "${1:-}" = warm ]; then shift; echo "page cache kept"; else drop_cache; fi
  t0=$(date +%s.%N)
  (cd $C && python3 -X importtime main.py --quick-test-for-ci --disable-auto-launch --front-end-root $W/fe "$@" \
     > $W/startup-log.txt 2> $W/importtime.txt)
  echo "ComfyUI start to exit (--quick-test-for-ci $*): $(since $t0) s"
  python3 - $W/importtime.txt <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("import time:") and "cumulative" not in line:
        _, cum_us, name = [x.strip() for x in line[len("import time:"):].split("|")]
        rows.append((int(cum_us), name))
top = sorted(rows, reverse=True)[:30]
print("slowest imports, cumulative s:", ", ".join(f"{n} {c / 1e6:.2f}" for c, n in top))
PY
  grep -E "seconds|Import times|took|Total VRAM|pinned|Enabled|Using|Set vram" $W/startup-log.txt | head -20
  ;;
fp8-files)  # replace the bf16 Flux Dev on the disk by the fp8 copies (the disk holds one set)
  rm -f $M/diffusion_models/flux1-dev.safetensors
  python3 benchmarks/rehearsal/make_weights.py $C $M --only flux1-dev-fp8-e4m3fn.safetensors,t5xxl_fp8_e4m3fn.safetensors 2>&1 \
    | grep -E "GB written|Error" ;;
routes|mixed|mixed-fast|fast|cold-fp8|cold) measure "$@" ;;
compile|fast-mode)  # inductor's cache in one place, as the Modal image keeps it on the
  # models Volume: the first run compiles into it, the second (a new ComfyUI) reads it
  step=$1; shift; export TORCHINDUCTOR_CACHE_DIR=$W/compile-cache; rm -rf $TORCHINDUCTOR_CACHE_DIR
  measure $step "$@"; measure $step-cached "$@"
  du -sh $TORCHINDUCTOR_CACHE_DIR ;;
felt)  # what a creator feels: a cold stack each, the click 20 s after opening the studio,
  # without and with the studio's POST /warm (which needs stack.py's warm_start wiring)
  shift; measure felt-cold "$@"; measure felt-prewarm "$@" ;;
fast-mode-once)  # fast-mode's first phase alone, e.g. after the Modal start's warm-ups
  shift; measure fast-mode "$@" ;;
jobs) shift; jobs_step "$@" ;;
previews) shift; jobs_step "$@" && previews_off "$1" ;;
issue22)  # one stack start for routes and jobs (routes leaves every model loaded), one restart
  shift; [ -f $W/.setup-done ] || setup || exit 1
  echo "== setup done, $(since $T0) s into this call"
  measure routes "$@"; jobs_step "$@" && previews_off "$1" ;;
*) echo "usage: $0 setup | startup [ARGS] | routes|mixed|fast|jobs|previews|issue22|... MODE [ARGS...]"; exit 2 ;;
esac
