#!/usr/bin/env bash
# Build the pinned control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
# and the KubeRay operator once per machine, into a cache keyed by go.mod + go.sum.
# Prints the binary directory on stdout (last line); progress goes to stderr.
# Env: CRS_BIN_CACHE (default ~/.cache/chaosraysvc/controlplane).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)"
cache="${CRS_BIN_CACHE:-$HOME/.cache/chaosraysvc/controlplane}"
out="$cache/$key"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler ray-operator)
pkgs=(go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver
      k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
      github.com/ray-project/kuberay/ray-operator)
if [ -f "$out/.complete" ]; then
    echo "controlplane: binaries cached in $out" >&2
    echo "$out"
    exit 0
fi
if [ "${1:-}" = "--cached-only" ]; then
    echo "controlplane: not built yet (run $0)" >&2
    exit 3
fi
mkdir -p "$out.tmp"
cd "$here"
start=$(date +%s)
for i in "${!tools[@]}"; do
    name="${tools[$i]}"
    echo "controlplane: building $name ($((i + 1))/${#tools[@]}, $(( $(date +%s) - start )) s so far)" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out.tmp/$name" "${pkgs[$i]}"
done
# KubeRay's CRDs, samples and operator Role, from the pinned module's source.
kuberay="$(go list -m -f '{{.Dir}}' github.com/ray-project/kuberay/ray-operator)"
mkdir -p "$out.tmp/crds" "$out.tmp/samples" "$out.tmp/operator-rbac"
cp "$kuberay"/config/crd/bases/*.yaml "$out.tmp/crds/"
cp "$kuberay"/config/samples/ray-service.high-availability.yaml "$out.tmp/samples/"
cp "$kuberay"/config/rbac/role.yaml "$out.tmp/operator-rbac/"
chmod -R u+w "$out.tmp"
go list -m -f '{{.Path}} {{.Version}}' k8s.io/kubernetes go.etcd.io/etcd/server/v3 \
    github.com/ray-project/kuberay/ray-operator > "$out.tmp/VERSIONS"
rm -rf "$out"
mv "$out.tmp" "$out"
touch "$out/.complete"
echo "controlplane: built ${#tools[@]} binaries in $(( $(date +%s) - start )) s into $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
