#!/usr/bin/env bash
# Build the pinned control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler),
# kube-proxy, the KubeRay operator and kubectl once per machine, into a cache keyed by go.mod +
# go.sum.
# One build at a time per machine (a lock in the cache); a build whose caller died stops.
# Prints the binary directory on stdout (last line); progress goes to stderr.
# Env: CRS_BIN_CACHE (default ~/.cache/chaosraysvc/controlplane).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
key="$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" | sha256sum | cut -c1-16)"
cache="${CRS_BIN_CACHE:-$HOME/.cache/chaosraysvc/controlplane}"
out="$cache/$key"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy ray-operator kubectl)
pkgs=(go.etcd.io/etcd/server/v3 k8s.io/kubernetes/cmd/kube-apiserver
      k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
      k8s.io/kubernetes/cmd/kube-proxy github.com/ray-project/kuberay/ray-operator
      k8s.io/kubernetes/cmd/kubectl)
if [ -f "$out/.complete" ]; then
    echo "controlplane: binaries cached in $out" >&2
    echo "$out"
    exit 0
fi
if [ "${1:-}" = "--cached-only" ]; then
    echo "controlplane: not built yet (run $0)" >&2
    exit 3
fi
mkdir -p "$cache"
# Serialise builds: a second caller waits here, then finds the first one's result cached.
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
    echo "controlplane: another build is running; waiting for it" >&2
    flock 9
fi
if [ -f "$out/.complete" ]; then
    echo "controlplane: binaries cached in $out (built by the other caller)" >&2
    echo "$out"
    exit 0
fi
# End with the caller: if the process that started this build dies (a test's timeout, Ctrl-C
# of a CLI killed hard), stop building instead of running on as an orphan.
caller=$PPID
self=$$
( while kill -0 "$caller" 2>/dev/null; do sleep 1; done
  echo "controlplane: the caller ($caller) is gone; stopping the build" >&2
  if [ "$(ps -o pgid= -p "$self" | tr -d ' ')" = "$self" ]; then
      kill -TERM -- "-$self" 2>/dev/null   # our own process group: go and its compilers
  else
      pkill -TERM -P "$self" 2>/dev/null; kill -TERM "$self" 2>/dev/null
  fi ) 9>&- &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true' EXIT
rm -rf "$out.tmp"
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
