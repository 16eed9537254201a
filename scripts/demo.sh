#!/usr/bin/env bash
# The main job: bring the sandbox up, check it with the doctor, run the head-kill experiment
# under traffic, write the report, and bring the sandbox down whatever happened (also on
# Ctrl-C).
#
# The sandbox runs KubeRay's recommended HA set-up here: the head out of the serve Service
# (excludeHeadPodFromServeSvc), so 2 serve endpoints. SANDBOX_FLAGS="" EXPECTED_ENDPOINTS=3
# runs the HA sample as published instead (head in the Service), where a head kill loses the
# requests in flight on the head's proxy: see docs/findings.md.
set -u
BIN=${BIN:-.venv/bin}
RUN_DIR=${RUN_DIR:-runs/$(date +%Y%m%d-%H%M%S)}
export RAYSVC_SANDBOX_DIR=${SANDBOX_DIR:-$PWD/.sandbox}
export RAYSVC_EXPECTED_ENDPOINTS=${EXPECTED_ENDPOINTS:-2}
SANDBOX_FLAGS=${SANDBOX_FLAGS---exclude-head-from-serve-svc}
# make demo SERVE_PORT=18000 DASHBOARD_PORT=18265 when 8000 or 8265 is taken.
PORT_FLAGS=(--serve-port "${SERVE_PORT:-8000}" --dashboard-port "${DASHBOARD_PORT:-8265}")

# A mistyped setting (EXPECTED_ENDPOINTS=two) or experiment: one line now, not a traceback
# from chaos after the sandbox's minute of start-up.
"$BIN/chaosraysvc" experiments check experiments/head-kill.json >/dev/null || exit 1

down() { "$BIN/chaosraysvc" sandbox down --state-dir "$RAYSVC_SANDBOX_DIR"; }
trap down EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2086
"$BIN/chaosraysvc" sandbox up --state-dir "$RAYSVC_SANDBOX_DIR" "${PORT_FLAGS[@]}" \
    $SANDBOX_FLAGS || exit 1
mkdir -p "$RUN_DIR"  # only once there is a run to keep (a failed `up` leaves no empty dir)
"$BIN/chaosraysvc" doctor --state-dir "$RAYSVC_SANDBOX_DIR" || true
"$BIN/chaos" --no-version-check --log-file "$RUN_DIR/chaostoolkit.log" run \
    --journal-path "$RUN_DIR/journal.json" experiments/head-kill.json
status=$?
if [ ! -e "$RUN_DIR/journal.json" ] && [ ! -e "$RUN_DIR/journal-traffic.jsonl" ]; then
    # chaos stopped before the run began (its message is above): nothing to keep
    rm -rf "$RUN_DIR"
    echo "no run recorded: chaos run failed before it started (exit code $status)" >&2
    [ "$status" = 0 ] && status=1
    exit $status  # the EXIT trap brings the sandbox down
fi
"$BIN/chaosraysvc" report "$RUN_DIR/journal.json" -o "$RUN_DIR/report.html" >/dev/null
trap - EXIT
down
echo "journal: $RUN_DIR/journal.json"
echo "traffic log: $RUN_DIR/journal-traffic.jsonl"
if [ -e "$RUN_DIR/report.html" ]; then echo "report: $RUN_DIR/report.html"; fi
exit $status
