#!/usr/bin/env bash
# Build the pinned Prometheus (lab/prometheus/go.mod: github.com/prometheus/prometheus v0.316.0,
# Prometheus 3.16.0) once per machine, into a cache keyed by go.mod + go.sum + tools.go + this
# script, beside the control plane's (lab/gobuild.sh: one Go build at a time per machine). Only
# Kubernetes service discovery is compiled in (remove_all_sd,enable_kubernetes_sd); the web UI's
# assets are not (its HTTP API is what the lab and the probes use).
# Prints the binary's path on stdout (last line); progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../gobuild.sh"
crs_begin prometheus "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/build.sh" -- "$@"
cd "$here"
echo "prometheus: building Prometheus (Kubernetes service discovery only)" >&2
module="$(go list -m -f '{{.Version}}' github.com/prometheus/prometheus)"
version="3.${module#v0.}"   # the module v0.316.0 is Prometheus 3.16.0
pkg=github.com/prometheus/common/version
CGO_ENABLED=0 go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags="-s -w -X $pkg.Version=$version -X $pkg.Revision=$module -X $pkg.Branch=pinned" \
    -o "$tmp/prometheus" github.com/prometheus/prometheus/cmd/prometheus
go list -m -f '{{.Path}} {{.Version}}' github.com/prometheus/prometheus k8s.io/client-go \
    github.com/prometheus/common > "$tmp/VERSIONS"
crs_finish "$out/prometheus"
