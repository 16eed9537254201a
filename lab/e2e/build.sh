#!/usr/bin/env bash
# Build Kubernetes' own end-to-end tests (e2e.test, `go test -c k8s.io/kubernetes/test/e2e`)
# agnhost (the one binary of their test image) and Ginkgo's CLI (runs it in parallel) from the
# Kubernetes pinned in lab/e2e/go.mod (the control plane's version), and fetch Debian's busybox-static for the
# busybox image, once per machine (lab/gobuild.sh). ~10 min on 2 cores the first time.
# Prints the directory on stdout (last line): e2e.test, agnhost, ginkgo, busybox/bin/<applets>,
# and the agnhost image's localhost.crt/.key.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../gobuild.sh"
crs_begin e2e "$here/go.mod" "$here/go.sum" "$here/tools.go" "$here/build.sh" -- "$@"
cd "$here"
k8s="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
minor="${k8s#v1.}"; minor="${minor%%.*}"
version_flags=" -X k8s.io/component-base/version.gitVersion=$k8s"
version_flags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
echo "e2e: building agnhost and ginkgo (1/2)" >&2
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/agnhost" k8s.io/kubernetes/test/images/agnhost
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
# the agnhost image's own files: porter's test certificate (at /localhost.crt, .key)
agnhost_src="$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images/agnhost"
cp "$agnhost_src/porter/localhost.crt" "$agnhost_src/porter/localhost.key" "$tmp/"
echo "e2e: building e2e.test (2/2, $(crs_elapsed) so far)" >&2
CGO_ENABLED=0 go test -c -trimpath -ldflags="-s -w$version_flags" -o "$tmp/e2e.test" \
    k8s.io/kubernetes/test/e2e
# busybox: Debian's static build (the e2e busybox image's role), unpacked, one link per applet.
echo "e2e: fetching busybox-static from Debian" >&2
if ! ( cd "$tmp" && apt-get download -qq busybox-static >/dev/null 2>&1 ); then
    # a machine whose package lists were never fetched: fetch them (root), else say how
    if [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 &&
        ( cd "$tmp" && apt-get download -qq busybox-static >/dev/null ); then
        :
    else
        echo "e2e: could not download Debian's busybox-static (run: sudo apt-get update)" >&2
        exit 1
    fi
fi
dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/busybox-deb"
mkdir -p "$tmp/busybox/bin"
cp "$tmp/busybox-deb/bin/busybox" "$tmp/busybox/bin/busybox"
rm -rf "$tmp/busybox-deb" "$tmp"/busybox-static_*.deb
for applet in $("$tmp/busybox/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$tmp/busybox/bin/$applet"
done
{ go list -m -f '{{.Path}} {{.Version}}' k8s.io/kubernetes
  echo "busybox $("$tmp/busybox/bin/busybox" | head -1)"; } > "$tmp/VERSIONS"
crs_finish "$out"
