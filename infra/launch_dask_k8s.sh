#!/usr/bin/env bash
# Label shards on Kubernetes: a Dask cluster of GPU workers (dask-kubernetes operator) and a Job
# that runs `poselabel run --runner dask` against it (infra/k8s/).
# Usage: infra/launch_dask_k8s.sh [--dry-run] INPUT_PATTERN OUTPUT_DIR [extra poselabel run options]
#   --dry-run: print the manifests and the kubectl commands instead of running them.
# Environment: IMAGE (the worker image, required), WORKERS (GPU worker pods, default 4),
#              NAME (cluster name, default poselabel), NAMESPACE (default: kubectl's).
# Needs kubectl and the dask-kubernetes operator in the cluster (see infra/README.md).
set -euo pipefail
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
: "${IMAGE:?set IMAGE (the worker image)}"
INPUT=${1:?input pattern}; OUTPUT=${2:?output dir}; shift 2
NAME=${NAME:-poselabel}; WORKERS=${WORKERS:-4}
HERE=$(cd "$(dirname "$0")" && pwd)

# A value for the YAML double-quoted strings of the manifests (JSON strings are valid YAML).
yaml_string() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# Replace each token @KEY@ (always inside a double-quoted YAML string) by VALUE, escaped.
render() {
  local text=$1 key value quoted
  shift
  while [ $# -gt 0 ]; do
    key=$1 value=$2; shift 2
    quoted=$(yaml_string "$value"); quoted=${quoted:1:${#quoted}-2}
    text=${text//"@$key@"/"$quoted"}
  done
  printf '%s\n' "$text"
}

CLUSTER=$(render "$(cat "$HERE/k8s/dask-cluster.yaml")" NAME "$NAME" IMAGE "$IMAGE")
JOB=$(render "$(cat "$HERE/k8s/label-job.yaml")" NAME "$NAME" IMAGE "$IMAGE" INPUT "$INPUT" OUTPUT "$OUTPUT")
# Extra poselabel options: the job's args (appended to its command).
ARGS=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@")
JOB=${JOB/"args: []"/"args: $ARGS"}
KUBECTL=(kubectl)
if [ -n "${NAMESPACE:-}" ]; then KUBECTL+=(--namespace "$NAMESPACE"); fi

if [ "$DRY_RUN" = 1 ]; then
  printf '%s\n---\n%s\n' "$CLUSTER" "$JOB"
  printf '# %s\n' "$(printf '%q ' "${KUBECTL[@]}" apply -f -) < dask-cluster" \
    "$(printf '%q ' "${KUBECTL[@]}" scale --replicas="$WORKERS" "daskworkergroup/$NAME-default")" \
    "$(printf '%q ' "${KUBECTL[@]}" apply -f -) < label-job" \
    "$(printf '%q ' "${KUBECTL[@]}" wait --for=condition=complete --timeout=-1s "job/$NAME-label")"
  exit 0
fi
printf '%s\n' "$CLUSTER" | "${KUBECTL[@]}" apply -f -
"${KUBECTL[@]}" scale --replicas="$WORKERS" "daskworkergroup/$NAME-default"
printf '%s\n' "$JOB" | "${KUBECTL[@]}" apply -f -
"${KUBECTL[@]}" wait --for=condition=complete --timeout=-1s "job/$NAME-label"
