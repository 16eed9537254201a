#!/usr/bin/env bash
# Build the pinned kube-router (lab/netpol/go.mod: kube-router v2.1.0, the only version the Go
# module proxy serves here) once per machine, into a cache keyed by go.mod + go.sum + tools.go
# + this script, beside the control plane's (lab/gobuild.sh: one Go build at a time per
# machine). The node runs only its NetworkPolicy controller (lab/chaosraysvc_lab/netpol.py).
# Prints the binary's path on stdout (last line); progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../gobuild.sh"
crs_begin netpol "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/build.sh" -- "$@"
cd "$here"
echo "netpol: building kube-router" >&2
version="$(go list -m -f '{{.Version}}' github.com/cloudnativelabs/kube-router/v2)"
pkg=github.com/cloudnativelabs/kube-router/v2/pkg/version
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X $pkg.Version=$version -X $pkg.BuildDate=pinned" \
    -o "$tmp/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
go list -m -f '{{.Path}} {{.Version}}' github.com/cloudnativelabs/kube-router/v2 k8s.io/client-go \
    golang.org/x/net google.golang.org/grpc > "$tmp/VERSIONS"
crs_finish "$out/kube-router"
