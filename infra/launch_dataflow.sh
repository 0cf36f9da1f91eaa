#!/usr/bin/env bash
# Launch a poselabel job on Google Cloud Dataflow with GPU workers.
# Usage: infra/launch_dataflow.sh [--dry-run] INPUT_PATTERN OUTPUT_DIR [extra poselabel run options]
#   --dry-run: print the command instead of running it.
# Environment: PROJECT, REGION, BUCKET, IMAGE (worker container), GPU_TYPE (default nvidia-l4),
#              MACHINE_TYPE (default g2-standard-8), MAX_WORKERS (default 10).
# The SDK processes of a worker VM share one copy of each network (--share-models machine)
# unless the options given say otherwise.
set -euo pipefail
DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then DRY_RUN=1; shift; fi
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}" "${IMAGE:?set IMAGE}"
INPUT=${1:?input pattern}; OUTPUT=${2:?output dir}; shift 2
CMD=(poselabel run --runner dataflow --input "$INPUT" --output "$OUTPUT"
  --share-models machine "$@" --
  --project="$PROJECT" --region="$REGION" --temp_location="gs://$BUCKET/tmp"
  --staging_location="gs://$BUCKET/staging"
  --sdk_container_image="$IMAGE" --sdk_location=container --experiments=use_runner_v2
  --dataflow_service_options="worker_accelerator=type:${GPU_TYPE:-nvidia-l4};count:1;install-nvidia-driver"
  --machine_type="${MACHINE_TYPE:-g2-standard-8}" --max_num_workers="${MAX_WORKERS:-10}"
  --number_of_worker_harness_threads=2)
if [ "$DRY_RUN" = 1 ]; then printf '%q ' "${CMD[@]}"; echo; exit 0; fi
exec "${CMD[@]}"
