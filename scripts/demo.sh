#!/usr/bin/env bash
# The main job: bring the sandbox up, run the head-kill experiment under traffic, write the
# report, and bring the sandbox down whatever happened (also on Ctrl-C).
set -u
BIN=${BIN:-.venv/bin}
RUN_DIR=${RUN_DIR:-runs/$(date +%Y%m%d-%H%M%S)}
export RAYSVC_SANDBOX_DIR=${SANDBOX_DIR:-$PWD/.sandbox}
mkdir -p "$RUN_DIR"

down() { "$BIN/chaosraysvc" sandbox down --state-dir "$RAYSVC_SANDBOX_DIR"; }
trap down EXIT
trap 'exit 130' INT TERM

"$BIN/chaosraysvc" sandbox up --state-dir "$RAYSVC_SANDBOX_DIR" || exit 1
"$BIN/chaos" --no-version-check --log-file "$RUN_DIR/chaostoolkit.log" run \
    --journal-path "$RUN_DIR/journal.json" experiments/head-kill.json
status=$?
echo "journal: $RUN_DIR/journal.json"
echo "traffic log: $RUN_DIR/journal-traffic.jsonl"
echo -n "report: "
"$BIN/chaosraysvc" report "$RUN_DIR/journal.json" -o "$RUN_DIR/report.html" | head -1
exit $status
