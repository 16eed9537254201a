#!/usr/bin/env bash
# Build the pinned Pushgateway (lab/pushgateway/go.mod: github.com/prometheus/pushgateway
# v1.11.5) once per machine, into a cache keyed by go.mod + go.sum + tools.go + this script,
# beside the control plane's (lab/gobuild.sh: one Go build at a time per machine).
# Prints the binary's path on stdout (last line); progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../gobuild.sh"
crs_begin pushgateway "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/build.sh" -- "$@"
cd "$here"
echo "pushgateway: building the Pushgateway" >&2
module="$(go list -m -f '{{.Version}}' github.com/prometheus/pushgateway)"
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X $pkg.Version=${module#v} -X $pkg.Revision=$module -X $pkg.Branch=pinned" \
    -o "$tmp/pushgateway" github.com/prometheus/pushgateway
go list -m -f '{{.Path}} {{.Version}}' github.com/prometheus/pushgateway \
    github.com/prometheus/client_golang github.com/prometheus/common > "$tmp/VERSIONS"
crs_finish "$out/pushgateway"
