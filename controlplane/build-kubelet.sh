#!/usr/bin/env bash
# Builds the real kubelet (k8s.io/kubernetes v1.37.2, the control plane's version)
# and a fake CRI server into the control plane's cache directory, keyed by
# version. Idempotent: a second run only checks versions. controlplane/build.sh
# runs it after the control plane, so README command 1 builds everything.
#
#   controlplane/build-kubelet.sh          # build if needed, print the bin directory
#   controlplane/build-kubelet.sh --print  # print the bin directory, build nothing
#
# Why a module of its own (controlplane/kubelet/): the kubelet imports modules the
# control plane does not (cri-streaming, otelrestful, ...), so its go.sum is larger;
# keeping it apart means the control plane's pinned graph never changes because of
# the kubelet. Every module both share is at the same version (checked when it was
# tidied), so a warm GOCACHE from the control-plane build is reused.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
K8S_MINOR=37

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${TLSBOOT_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tlsboot/controlplane}"
# Beside the control plane's binaries: one directory per version pair.
bin_dir="$cache_root/$K8S_VERSION-etcd$ETCD_VERSION"

if [[ "${1:-}" == "--print" ]]; then
  echo "$bin_dir"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

have() {
  [[ -x "$bin_dir/kubelet" && -x "$bin_dir/fakecri" ]] || return 1
  local out
  out=$("$bin_dir/kubelet" --version 2>/dev/null) || return 1
  grep -qx "Kubernetes $K8S_VERSION" <<<"$out" || return 1
}

if have; then
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "controlplane/build-kubelet.sh: 'go' not found on PATH; install Go >= 1.26" >&2; exit 1; }

log() { printf '[kubelet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mkdir -p "$bin_dir"

# A lock of its own: build.sh holds .lock while it calls this script, and a
# second open of the same file would wait on itself.
exec 8>"$cache_root/.lock-kubelet"
if ! flock -n 8; then
  log "another build of the kubelet is running; waiting for it"
  flock 8
fi
if have; then
  echo "$bin_dir"
  exit 0
fi
rm -rf "$bin_dir"/.kubelet-build.*

start=$(date +%s)
tmp="$(mktemp -d "$bin_dir/.kubelet-build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# The linker's scratch files (~100 MB) go beside the result, not to a small /tmp.
export GOTMPDIR="$tmp"

log "building kubelet $K8S_VERSION and the fake CRI into $bin_dir"
log "about 5 minutes on 2 cores after the control-plane build (most packages are cached), 15+ from cold"

progress() {
  local logf="$1" pid="$2" total="$3" n
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    n=$(grep -c '/compile -o' "$logf" 2>/dev/null || true)
    log "kubelet: $n of at most $total packages compiled (cached ones are skipped), $(( $(date +%s) - start ))s elapsed"
  done
}

log "step 1/2: downloading Go modules"
(cd "$here/kubelet" && go mod download) >&2

ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$K8S_MINOR -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
tags=selinux,notest,grpcnotrace
total=$(cd "$here/kubelet" && go list -tags="$tags" -deps k8s.io/kubernetes/cmd/kubelet ./fakecri | wc -l)
log "step 2/2: compiling kubelet and fakecri (~$total packages)"
(cd "$here/kubelet" && go build -x -trimpath -tags="$tags" -ldflags="$ld" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kubelet ./fakecri) 2>"$tmp/kubelet.log" &
pid=$!
progress "$tmp/kubelet.log" "$pid" "$total" &
ppid=$!
if ! wait "$pid"; then
  kill "$ppid" 2>/dev/null || true
  grep -v '^\(mkdir\|cd\|cat\|cp\|mv\|rm\|EOF\|#\|packagefile\|/\)' "$tmp/kubelet.log" | tail -40 >&2
  log "kubelet build failed"
  exit 1
fi
kill "$ppid" 2>/dev/null || true

mv "$tmp/kubelet" "$tmp/fakecri" "$bin_dir/"
have || { log "built kubelet does not report $K8S_VERSION"; exit 1; }
secs=$(( $(date +%s) - start ))
{
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs}s with $(go env GOVERSION) on $(nproc) cores"
  (cd "$bin_dir" && ls -l kubelet fakecri | awk '{print $NF": "$5" bytes"}')
} >"$bin_dir/BUILD_INFO.kubelet"
log "done in ${secs}s"
echo "$bin_dir"
