#!/usr/bin/env bash
# Builds the real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager) from the Go module proxy into a cache outside the
# work tree, keyed by version, then the real kubelet and its fake CRI
# (controlplane/build-kubelet.sh). Idempotent: a second run only checks versions.
#
#   controlplane/build.sh          # build if needed, print the bin directory
#   controlplane/build.sh --print  # print the bin directory, build nothing
#
# Why this shape: k8s.io/kubernetes cannot be a plain dependency (its go.mod
# requires the staging modules at v0.0.0), so controlplane/k8s/go.mod replaces
# every staging module with its published v0.<minor>.<patch>. etcd lives in its
# own module so the two dependency graphs cannot raise each other's versions.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
K8S_MINOR=37

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${TLSBOOT_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tlsboot/controlplane}"
bin_dir="$cache_root/$K8S_VERSION-etcd$ETCD_VERSION"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin_dir"
  exit 0
fi

# readonly: the committed go.mod/go.sum pin everything; a build never edits them.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

have() {
  [[ -x "$bin_dir/kube-apiserver" && -x "$bin_dir/kube-controller-manager" && -x "$bin_dir/etcd" ]] || return 1
  # Output captured first: `grep -q` exits at the first match and, under pipefail, the
  # binary's SIGPIPE would fail the check (and trigger a needless rebuild).
  local out
  out=$("$bin_dir/kube-apiserver" --version 2>/dev/null) || return 1
  grep -qx "Kubernetes $K8S_VERSION" <<<"$out" || return 1
  out=$("$bin_dir/etcd" --version 2>/dev/null) || return 1
  grep -q "etcd Version: ${ETCD_VERSION#v}" <<<"$out" || return 1
}

# The kubelet step is idempotent too; its stdout (the same directory) is ours to print.
kubelet() { bash "$here/build-kubelet.sh" >/dev/null; }

if have; then
  kubelet
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "controlplane/build.sh: 'go' not found on PATH; install Go >= 1.26" >&2; exit 1; }

log() { printf '[controlplane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mkdir -p "$bin_dir"

# One build at a time per cache (tests, `up` and CI may all ask at once); the
# waiter then finds the binaries and returns.
exec 9>"$cache_root/.lock"
if ! flock -n 9; then
  log "another build of the control plane is running; waiting for it"
  flock 9
fi
if have; then
  kubelet
  echo "$bin_dir"
  exit 0
fi
# Leftovers of builds that were killed.
rm -rf "$bin_dir"/.build.*

start=$(date +%s)
tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

log "building Kubernetes $K8S_VERSION and etcd $ETCD_VERSION into $bin_dir"
log "first build: about 15-25 minutes on 2 cores (downloads ~600 MB of modules, compiles ~2,450 packages); later runs reuse the cache in seconds"

# Progress while go compiles in silence: count compile actions in -x output
# (packages already in GOCACHE are not recompiled, so a warm build ends early).
progress() {
  local what="$1" logf="$2" pid="$3" total="$4" n
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    n=$(grep -c '/compile -o' "$logf" 2>/dev/null || true)
    log "$what: $n of $total packages compiled, $(( $(date +%s) - start ))s elapsed"
  done
}

log "step 1/3: downloading Go modules"
(cd "$here/k8s" && go mod download) >&2
(cd "$here/etcd" && go mod download) >&2

ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$K8S_MINOR -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

tags=selinux,notest,grpcnotrace
total=$(cd "$here/k8s" && go list -tags="$tags" -deps k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager | wc -l)
log "step 2/3: compiling kube-apiserver and kube-controller-manager (~$total packages, the long part)"
(cd "$here/k8s" && go build -x -trimpath -tags="$tags" -ldflags="$ld" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager) 2>"$tmp/k8s.log" &
pid=$!
progress "kubernetes" "$tmp/k8s.log" "$pid" "$total" &
ppid=$!
if ! wait "$pid"; then
  kill "$ppid" 2>/dev/null || true
  grep -v '^\(mkdir\|cd\|cat\|cp\|mv\|rm\|EOF\|#\|packagefile\|/\)' "$tmp/k8s.log" | tail -40 >&2
  log "kubernetes build failed"
  exit 1
fi
kill "$ppid" 2>/dev/null || true

log "step 3/3: compiling etcd (about a minute)"
(cd "$here/etcd" && go build -trimpath -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
  -o "$tmp/etcd" .) >&2

mv "$tmp/kube-apiserver" "$tmp/kube-controller-manager" "$tmp/etcd" "$bin_dir/"
have || { log "built binaries do not report the expected versions"; exit 1; }
secs=$(( $(date +%s) - start ))
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s with $(go env GOVERSION) on $(nproc) cores"
  (cd "$bin_dir" && ls -l etcd kube-apiserver kube-controller-manager | awk '{print $NF": "$5" bytes"}')
} >"$bin_dir/BUILD_INFO"
log "done in ${secs}s: $(du -sh "$bin_dir" | cut -f1) in $bin_dir"
kubelet
echo "$bin_dir"
