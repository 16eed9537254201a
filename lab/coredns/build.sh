#!/usr/bin/env bash
# Build the pinned CoreDNS (lab/coredns/go.mod: coredns v1.14.7, its own client-go v0.35) once
# per machine, into a cache keyed by go.mod + go.sum + main.go + this script, beside the control
# plane's (lab/gobuild.sh: one Go build at a time per machine). Prints the binary's path on
# stdout (last line); progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../gobuild.sh"
crs_begin coredns "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" -- "$@"
cd "$here"
echo "coredns: building" >&2
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/coredns" .
go list -m -f '{{.Path}} {{.Version}}' github.com/coredns/coredns k8s.io/client-go > "$tmp/VERSIONS"
crs_finish "$out/coredns"
