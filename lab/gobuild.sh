# Shared by lab/*/build.sh (sourced, not run): one Go build at a time per machine, a cache
# keyed by the caller's pins, a build that stops when its caller dies, and the result printed
# last on stdout. Progress goes to stderr.
#
#   . "$here/../gobuild.sh"
#   crs_begin NAME KEY-FILES... -- "$@"   # sets $out, $tmp; exits 0 (cached) or 3 (--cached-only)
#   ... build into "$tmp" ...
#   crs_finish RESULT                      # RESULT: what to print (a path under $out)
#
# Env: CRS_BIN_CACHE (default ~/.cache/chaosraysvc/controlplane): the control plane's cache; the
# others are its siblings (../coredns, ../e2e); the lock lives in it.

crs_result=""

crs_begin() {
    crs_name=$1; shift
    local files=() args=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do files+=("$1"); shift; done
    [ "$#" -gt 0 ] && shift
    args=("$@")
    local key lock_dir
    key="$(cat "${files[@]}" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
    lock_dir="${CRS_BIN_CACHE:-$HOME/.cache/chaosraysvc/controlplane}"
    if [ "$crs_name" = controlplane ]; then
        out="$lock_dir/$key"
    else
        out="$(dirname "$lock_dir")/$crs_name/$key"
    fi
    tmp="$out.tmp"
    if [ -f "$out/.complete" ]; then
        echo "$crs_name: cached in $out" >&2
        cat "$out/.complete"
        exit 0
    fi
    if [ "${args[0]:-}" = "--cached-only" ]; then
        echo "$crs_name: not built yet (run $0)" >&2
        exit 3
    fi
    mkdir -p "$lock_dir" "$(dirname "$out")"
    # Serialise builds: a second caller waits here, then finds the first one's result cached.
    exec 9>"$lock_dir/.build.lock"
    if ! flock -n 9; then
        echo "$crs_name: another build is running; waiting for it" >&2
        flock 9
    fi
    if [ -f "$out/.complete" ]; then
        echo "$crs_name: cached in $out (built by the other caller)" >&2
        cat "$out/.complete"
        exit 0
    fi
    # End with the caller: if the process that started this build dies (a test's timeout,
    # Ctrl-C of a CLI killed hard), stop building instead of running on as an orphan.
    local caller=$PPID self=$$
    ( while kill -0 "$caller" 2>/dev/null; do sleep 1; done
      echo "$crs_name: the caller ($caller) is gone; stopping the build" >&2
      if [ "$(ps -o pgid= -p "$self" | tr -d ' ')" = "$self" ]; then
          kill -TERM -- "-$self" 2>/dev/null   # our own process group: go and its compilers
      else
          pkill -TERM -P "$self" 2>/dev/null; kill -TERM "$self" 2>/dev/null
      fi ) 9>&- &
    crs_watcher=$!
    trap 'kill "$crs_watcher" 2>/dev/null || true' EXIT
    rm -rf "$tmp"
    mkdir -p "$tmp"
    crs_start=$(date +%s)
}

crs_elapsed() { echo "$(( $(date +%s) - crs_start )) s"; }

crs_finish() {
    local result=$1
    chmod -R u+w "$tmp"
    rm -rf "$out"
    mv "$tmp" "$out"
    echo "$result" > "$out/.complete"
    echo "$crs_name: built in $(crs_elapsed) into $out ($(du -sh "$out" | cut -f1))" >&2
    echo "$result"
}
