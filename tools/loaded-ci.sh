#!/usr/bin/env bash
# The whole suite on a loaded machine, as CI runs it (issue 21): a fresh clone of this
# repository's HEAD, busy processes beside it for the whole run, `.ci/run`, RUNS times in
# a row, stopping at the first failure. CI's 2-core machines run other work too; a test
# that races the wall clock fails here before it fails there.
#
#   tools/loaded-ci.sh            # 3 runs, 2 busy processes
#   RUNS=1 HOGS=4 tools/loaded-ci.sh
#
# Logs: $WORK/run-N.log (WORK defaults to a new folder under /tmp). A folder ../shared
# beside this repository is linked beside the clone, as CI lays it out.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
hogs=${HOGS:-2}
work=${WORK:-$(mktemp -d /tmp/ryla-loaded.XXXXXX)}

busy=()
stop_busy() { [ ${#busy[@]} -eq 0 ] || kill "${busy[@]}" 2>/dev/null || true; }
trap stop_busy EXIT

for n in $(seq 1 "$runs"); do
  rm -rf "$work/$n"; mkdir -p "$work/$n"
  git clone -q "$here" "$work/$n/ryla"
  [ -d "$here/../shared" ] && ln -s "$(cd "$here/../shared" && pwd)" "$work/$n/shared"
  busy=()
  for _ in $(seq 1 "$hogs"); do python3 -c 'while 1: pass' & busy+=($!); done
  start=$(date +%s)
  status=0
  (cd "$work/$n/ryla" && CI=true bash .ci/run) > "$work/run-$n.log" 2>&1 || status=$?
  stop_busy
  echo "run $n of $runs: exit $status after $(( $(date +%s) - start )) s, $(uptime | sed 's/.*load/load/')"
  tail -1 "$work/run-$n.log"
  [ "$status" -eq 0 ] || exit "$status"
done
