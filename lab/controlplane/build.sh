#!/usr/bin/env bash
# Build the pinned control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler),
# kube-proxy, the KubeRay operator and kubectl once per machine, into a cache keyed by go.mod +
# go.sum (lab/gobuild.sh: one build at a time, stops when its caller dies). The Kubernetes
# binaries carry their release version (`kubectl version` says v1.34.2, not v0.0.0-master).
# Prints the binary directory on stdout (last line); progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../gobuild.sh"
crs_begin controlplane "$here/go.mod" "$here/go.sum" "$here/build.sh" -- "$@"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy ray-operator kubectl)
pkgs=(go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver
      k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
      k8s.io/kubernetes/cmd/kube-proxy github.com/ray-project/kuberay/ray-operator
      k8s.io/kubernetes/cmd/kubectl)
cd "$here"
k8s="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"   # v1.34.2
minor="${k8s#v1.}"; minor="${minor%%.*}"
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    version_flags+=" -X $pkg.gitTreeState=clean"
done
for i in "${!tools[@]}"; do
    name="${tools[$i]}"
    echo "controlplane: building $name ($((i + 1))/${#tools[@]}, $(crs_elapsed) so far)" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w$version_flags" -o "$tmp/$name" "${pkgs[$i]}"
done
# KubeRay's CRDs, samples and operator Role, from the pinned module's source.
kuberay="$(go list -m -f '{{.Dir}}' github.com/ray-project/kuberay/ray-operator)"
mkdir -p "$tmp/crds" "$tmp/samples" "$tmp/operator-rbac"
cp "$kuberay"/config/crd/bases/*.yaml "$tmp/crds/"
cp "$kuberay"/config/samples/ray-service.high-availability.yaml "$tmp/samples/"
cp "$kuberay"/config/rbac/role.yaml "$tmp/operator-rbac/"
go list -m -f '{{.Path}} {{.Version}}' k8s.io/kubernetes go.etcd.io/etcd/server/v3 \
    github.com/ray-project/kuberay/ray-operator > "$tmp/VERSIONS"
crs_finish "$out"
