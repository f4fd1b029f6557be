#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The cloud path end to end on a real project: what no test in this repository can reach (docs/deploy.md).
# Provisions, uploads the model, builds the image and the template, starts (or updates) the streaming job,
# uploads one clip and waits for its row in BigQuery.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF2'
Usage: PROJECT=my-project [REGION=us-central1] templates/smoke.sh [--dry-run]
       (or: PROJECT=my-project make cloud-smoke, which first makes the demo model and audio)

1. templates/provision.sh (idempotent)
2. uploads LOCAL_MODEL (artifacts/models/demo) to MODEL_URI, unless MODEL_URI already holds a model
3. templates/build.sh: Cloud Build image + template spec
4. templates/run.sh streaming (with --update when the job already runs)
5. uploads CLIP (default: a WAV from demo/input/tone) as gs://$INPUT_BUCKET/smoke/<time>-<name>
6. polls BigQuery until that object has a result row (exit 0) or an error row (exit 1), for at most
   SMOKE_TIMEOUT_SECONDS (1800: a new streaming job needs several minutes to start its first worker)

  --dry-run   print every command instead of running it (no Google Cloud access needed)
  --help      this text
EOF2
}

parse_common_flags "$@"
((${#ARGS[@]} == 0)) || die "unexpected arguments: ${ARGS[*]} (see --help)"
load_settings
LOCAL_MODEL="${LOCAL_MODEL:-$REPO_ROOT/artifacts/models/demo}"
SMOKE_TIMEOUT_SECONDS="${SMOKE_TIMEOUT_SECONDS:-1800}"
POLL_SECONDS="${POLL_SECONDS:-30}"
if [[ -z "${CLIP:-}" ]]; then
  clips=("$REPO_ROOT"/demo/input/tone/*.wav)
  CLIP="${clips[0]}"
fi
((DRY_RUN)) || [[ -f "$CLIP" ]] || die "no clip to upload: run \`make demo-input\` or set CLIP=path/to/audio"
FLAGS=()
((DRY_RUN == 0)) || FLAGS+=(--dry-run)

section "1. Provision"
"$TEMPLATES_DIR/provision.sh" "${FLAGS[@]}"

section "2. Model at $MODEL_URI"
if ! exists gcloud storage ls "$MODEL_URI/metadata.json" --project="$PROJECT"; then
  ((DRY_RUN)) || [[ -f "$LOCAL_MODEL/metadata.json" ]] ||
    die "no model at $LOCAL_MODEL: run \`make model\` or set LOCAL_MODEL"
  run gcloud storage cp --recursive "$LOCAL_MODEL/*" "$MODEL_URI/" --project="$PROJECT"
fi

section "3. Image and template"
"$TEMPLATES_DIR/build.sh" "${FLAGS[@]}"

section "4. Streaming job $JOB_NAME"
capture RUNNING gcloud dataflow jobs list --project="$PROJECT" --region="$REGION" --status=active \
  --filter="name=$JOB_NAME" --format="value(id)"
if ((DRY_RUN == 0)) && [[ -n "$RUNNING" ]]; then
  "$TEMPLATES_DIR/run.sh" streaming --update
else
  "$TEMPLATES_DIR/run.sh" streaming "${FLAGS[@]}"
fi

OBJECT="smoke/$(date -u +%Y%m%d-%H%M%S)-$(basename "$CLIP")"
AUDIO_FILE="gs://$INPUT_BUCKET/$OBJECT"
section "5. Upload $AUDIO_FILE"
run gcloud storage cp "$CLIP" "$AUDIO_FILE" --project="$PROJECT"

section "6. Its row in $OUTPUT_TABLE (or $ERROR_TABLE)"
WHERE_OURS="WHERE audio_file = '$AUDIO_FILE'"
RESULT_QUERY="SELECT audio_file, label, confidence, model_version, spectrogram_image, processed_at"
RESULT_QUERY+=" FROM \`$PROJECT.$DATASET.$RESULTS_TABLE\` $WHERE_OURS"
ERROR_QUERY="SELECT audio_file, stage, error_type, message FROM \`$PROJECT.$DATASET.$ERRORS_TABLE\` $WHERE_OURS"
started=$SECONDS
while :; do
  capture RESULT bq --project_id="$PROJECT" query --use_legacy_sql=false --format=prettyjson "$RESULT_QUERY"
  capture FAILURE bq --project_id="$PROJECT" query --use_legacy_sql=false --format=prettyjson "$ERROR_QUERY"
  ((DRY_RUN == 0)) || exit 0
  if [[ "$RESULT" == *'"label"'* ]]; then
    printf '%s\n' "$RESULT"
    echo "OK: the template built, the job launched and $AUDIO_FILE has its result row after $((SECONDS - started)) s."
    exit 0
  fi
  if [[ "$FAILURE" == *'"error_type"'* ]]; then
    printf '%s\n' "$FAILURE"
    die "$AUDIO_FILE became an error row (above)"
  fi
  if ((SECONDS - started >= SMOKE_TIMEOUT_SECONDS)); then
    die "no row for $AUDIO_FILE after ${SMOKE_TIMEOUT_SECONDS} s; see the job's page and logs:
  https://console.cloud.google.com/dataflow/jobs?project=$PROJECT
  gcloud dataflow jobs list --project=$PROJECT --region=$REGION --status=active"
  fi
  echo "  ... no row yet after $((SECONDS - started)) s" >&2
  sleep "$POLL_SECONDS"
done
