#!/usr/bin/env bash
# The GPU rehearsal: upstream ComfyUI at the pinned commit with both node packs, this
# backend started the way backend/modal_app.py starts it, random-weight model files of the
# real architectures for every pipeline, and every route requested through ryla's client.
# Run on the GPU machine from the repository root, with .gpu/ (benchmarks/rehearsal/prepare.sh)
# carried:
#   benchmarks/rehearsal/rehearse.sh setup       wheels, ComfyUI, weights (~4 min, once per machine)
#   benchmarks/rehearsal/rehearse.sh routes      cold start + every route   -> $OUT/<date>-<gpu>.json
#   benchmarks/rehearsal/rehearse.sh mixed MODE [COMFYUI ARGS...]   the mixed sequence under MODE
set -u; export PYTHONUNBUFFERED=1
O=${OUT:-/tmp/out}; mkdir -p "$O"
W=/tmp/rehearsal; C=$W/cu/ComfyUI; M=$C/models; X=/dev/shm/ryla-models; L=$W/loras
export PYTHONPATH=/tmp/site:$PWD RYLA_API_TOKEN=rehearsal
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
GPU_SLUG=$(echo "$GPU" | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-' | sed 's/nvidia-//')
since() { python3 -c "import time; print(round(time.time() - $1, 1))"; }

setup() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  df -h /tmp /dev/shm | tail -2
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
  mkdir -p $W/cu $L && tar -xzf .gpu/comfyui.tar.gz -C $W/cu
  mkdir -p $M/insightface/models && cp -r .gpu/antelopev2 $M/insightface/models/   # stand-ins
  t0=$(date +%s.%N)
  # Flux Dev and its encoders on the disk (the cold start reads them); the rest in RAM.
  python3 benchmarks/rehearsal/make_weights.py $C $M \
     --only flux1-dev.safetensors,t5xxl_fp16.safetensors,clip_l.safetensors,ae.safetensors > $O/weights-disk.txt 2>&1 &
  python3 benchmarks/rehearsal/make_weights.py $C $M --extra-dir $X --lora-out $W/lora-a.safetensors \
     --only flux1-schnell.safetensors,sd_xl_base_1.0.safetensors,instantid_controlnet.safetensors,ip-adapter.bin,pulid_flux_v0.9.1.safetensors,EVA02_CLIP_L_336_psz14_s6B.pt,detection_Resnet50_Final.pth,parsing_bisenet.pth,wan2.1_t2v_1.3B_fp16.safetensors,umt5_xxl_fp8_e4m3fn_scaled.safetensors,wan_2.1_vae.safetensors \
     > $O/weights-ram.txt 2>&1
  wait
  grep -l Traceback $O/weights-*.txt && { tail -20 $O/weights-*.txt; exit 1; }
  cp $W/lora-a.safetensors $W/lora-b.safetensors
  grep -vi warn $O/weights-*.txt | grep -E "GB written|params|LoRA|Error|error" | tail -40
  echo "weights written in $(since $t0) s"; df -h /tmp /dev/shm | tail -2
  mkdir -p $W/fe && echo "<html></html>" > $W/fe/index.html
}

stop_stack() { pkill -f benchmarks.rehearsal.stack; pkill -f "$C/main.py"; sleep 3; }

start_stack() { # $1 label, rest: extra ComfyUI arguments (--prefetch=P / --warm-up=P go to stack.py)
  local label=$1; shift
  local extra=(); for a in "$@"; do case $a in --prefetch=*|--warm-up=*) extra+=("$a");; *) extra+=("--comfyui-arg=$a");; esac; done
  rm -rf $W/data
  (setsid nohup python3 -m benchmarks.rehearsal.stack --comfyui-dir $C --models-dir $M --lora-dir $L \
     --data-dir $W/data --port 8000 --front-end-root $W/fe --log $O/comfy-$label.log "${extra[@]}" \
     < /dev/null > $W/stack-$label.out 2>&1 &)
  for i in $(seq 1 1200); do grep -q comfyui_ready_s $W/stack-$label.out 2>/dev/null && break; sleep 0.25; done
  head -1 $W/stack-$label.out | grep -q comfyui_ready_s \
    || { echo "stack did not start"; tail -30 $W/stack-$label.out $O/comfy-$label.log; exit 1; }
  echo "$label: $(head -1 $W/stack-$label.out | cut -c1-300)"
}

drop_cache() { sync; echo 3 > /proc/sys/vm/drop_caches && echo "page cache dropped"; }

case "${1:-}" in
setup) setup ;;
routes)
  stop_stack; drop_cache
  start_stack routes
  python3 -m benchmarks.rehearsal.measure --backend-url http://127.0.0.1:8000 --gpu "$GPU" \
     --stack-figures $W/stack-routes.out --reference .gpu/face.jpg --lora $W/lora-a.safetensors \
     --lora $W/lora-b.safetensors --mode default --phase routes \
     --out "$O/$(date +%F)-$GPU_SLUG.json"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader
  grep -E "Prompt executed|Requested to load|loaded completely|loaded partially|Error|error|Traceback" $O/comfy-routes.log | tail -40
  ;;
mixed)
  mode=$2; shift 2
  stop_stack; drop_cache
  start_stack "$mode" "$@"
  python3 -m benchmarks.rehearsal.measure --backend-url http://127.0.0.1:8000 --gpu "$GPU" \
     --stack-figures $W/stack-$mode.out --reference .gpu/face.jpg --lora $W/lora-a.safetensors \
     --lora $W/lora-b.safetensors --mode "$mode" --phase mixed \
     --out "$O/$(date +%F)-$GPU_SLUG-$mode.json"
  grep -E "Prompt executed|Requested to load|loaded completely|loaded partially|Error" $O/comfy-$mode.log | tail -30
  ;;
*) echo "usage: $0 setup | routes | mixed MODE [COMFYUI ARGS...]"; exit 2 ;;
esac
