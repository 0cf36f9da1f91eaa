#!/usr/bin/env bash
# Launch a poselabel job on an Apache Flink cluster (Beam's FlinkRunner, portable SDK harness).
# Usage: infra/launch_flink.sh [--dry-run] INPUT_PATTERN OUTPUT_DIR [extra poselabel run options]
#   --dry-run: print the command instead of running it.
# Environment:
#   FLINK_MASTER  Flink REST endpoint HOST:PORT (the JobManager, usually port 8081)
#   ENVIRONMENT   docker (default): each TaskManager starts the worker image with `docker run`
#                   (IMAGE required; GPUs need the NVIDIA runtime as Docker's default runtime);
#                 external: the worker image already runs beside each TaskManager as a worker
#                   pool (`IMAGE --worker_pool`, e.g. a Kubernetes sidecar holding the GPU)
#   IMAGE         the worker image (infra/worker/Dockerfile), for ENVIRONMENT=docker
#   WORKER_POOL   the worker pool's address seen from a TaskManager (default localhost:50000)
#   PARALLELISM   Flink parallelism (default: the cluster's)
#   FLINK_VERSION Beam's job-server build to use (default: Beam's newest; match the cluster's)
#   FLINK_JOB_SERVER_JAR  a local copy of Beam's Flink job-server jar (default: Maven Central)
# One network copy per machine (--share-models machine) unless the options given say otherwise.
# Inputs and outputs must be reachable from the workers (gs:// or a shared file system).
set -euo pipefail
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
: "${FLINK_MASTER:?set FLINK_MASTER (HOST:PORT of the Flink REST endpoint)}"
INPUT=${1:?input pattern}; OUTPUT=${2:?output dir}; shift 2
case "${ENVIRONMENT:-docker}" in
  docker) : "${IMAGE:?set IMAGE (the worker image)}"
          ENV_ARGS=(--environment_type=DOCKER "--environment_config=$IMAGE") ;;
  external) ENV_ARGS=(--environment_type=EXTERNAL "--environment_config=${WORKER_POOL:-localhost:50000}") ;;
  *) echo "ENVIRONMENT must be docker or external, not '$ENVIRONMENT'" >&2; exit 2 ;;
esac
# The uber-jar submission needs only HTTP access to the REST endpoint (no local Java).
BEAM_ARGS=("${ENV_ARGS[@]}" --flink_submit_uber_jar)
if [ -n "${PARALLELISM:-}" ]; then BEAM_ARGS+=("--parallelism=$PARALLELISM"); fi
if [ -n "${FLINK_VERSION:-}" ]; then BEAM_ARGS+=("--flink_version=$FLINK_VERSION"); fi
if [ -n "${FLINK_JOB_SERVER_JAR:-}" ]; then BEAM_ARGS+=("--flink_job_server_jar=$FLINK_JOB_SERVER_JAR"); fi
CMD=(poselabel run --runner flink --flink-master "$FLINK_MASTER" --input "$INPUT" --output "$OUTPUT"
     --share-models machine "$@"
     -- "${BEAM_ARGS[@]}")
if [ "$DRY_RUN" = 1 ]; then printf '%q ' "${CMD[@]}"; echo; exit 0; fi
exec "${CMD[@]}"
