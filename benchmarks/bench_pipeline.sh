#!/usr/bin/env bash
# Times the README main command on a fresh clone of this repository (fresh venv, default params):
# every output line is prefixed with the seconds since the start, so stage times can be read off
# the "Running stage" lines. Results: benchmarks/results/pipeline.md.
#
#   bash benchmarks/bench_pipeline.sh [WORKDIR]      # default WORKDIR: /tmp/xfer-bench-pipeline
set -uo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/xfer-bench-pipeline}
rm -rf "$work" && git clone -q "$src" "$work" && cd "$work" || exit 1
cmd=$(awk '/^```bash/{getline; print; exit}' README.md)
echo "main command: $cmd"
start=$(date +%s)
bash -c "$cmd" 2>&1 | while IFS= read -r line; do echo "$(( $(date +%s) - start ))s $line"; done
rc=${PIPESTATUS[0]}
echo "exit $rc, total $(( $(date +%s) - start ))s"
grep -H '"peak_rss_mb"' .xfer-work/finetune/*/host.json 2>/dev/null
exit "$rc"
