#!/usr/bin/env bash
# Build the pinned CoreDNS (lab/coredns/go.mod: coredns v1.14.7, its own client-go v0.35) once
# per machine, into a cache keyed by go.mod + go.sum + main.go + this script, beside the control
# plane's cache. Builds are serialised with the control plane's (one lock: one Go build at a
# time per machine). Prints the binary's path on stdout (last line); progress goes to stderr.
# Env: CRS_BIN_CACHE (default ~/.cache/chaosraysvc/controlplane; CoreDNS goes to its ../coredns).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" | sha256sum | cut -c1-16)"
lock_dir="${CRS_BIN_CACHE:-$HOME/.cache/chaosraysvc/controlplane}"
out="$(dirname "$lock_dir")/coredns/$key"
if [ -f "$out/.complete" ]; then
    echo "coredns: cached in $out" >&2
    echo "$out/coredns"
    exit 0
fi
if [ "${1:-}" = "--cached-only" ]; then
    echo "coredns: not built yet (run $0)" >&2
    exit 3
fi
mkdir -p "$lock_dir" "$(dirname "$out")"
exec 9>"$lock_dir/.build.lock"
if ! flock -n 9; then
    echo "coredns: another build is running; waiting for it" >&2
    flock 9
fi
if [ -f "$out/.complete" ]; then
    echo "coredns: cached in $out (built by the other caller)" >&2
    echo "$out/coredns"
    exit 0
fi
# End with the caller, as lab/controlplane/build.sh does.
caller=$PPID
self=$$
( while kill -0 "$caller" 2>/dev/null; do sleep 1; done
  echo "coredns: the caller ($caller) is gone; stopping the build" >&2
  if [ "$(ps -o pgid= -p "$self" | tr -d ' ')" = "$self" ]; then
      kill -TERM -- "-$self" 2>/dev/null
  else
      pkill -TERM -P "$self" 2>/dev/null; kill -TERM "$self" 2>/dev/null
  fi ) 9>&- &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true' EXIT
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cd "$here"
start=$(date +%s)
echo "coredns: building" >&2
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out.tmp/coredns" .
go list -m -f '{{.Path}} {{.Version}}' github.com/coredns/coredns k8s.io/client-go > "$out.tmp/VERSIONS"
rm -rf "$out"
mv "$out.tmp" "$out"
touch "$out/.complete"
echo "coredns: built in $(( $(date +%s) - start )) s into $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out/coredns"
