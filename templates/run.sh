#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Launches the pipeline from its Flex Template: the streaming job, an in-place update of it, a
# batch replay of a backlog, or a drain.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: PROJECT=my-project [REGION=us-central1] templates/run.sh COMMAND [--dry-run] [-- NAME=VALUE ...]

Commands:
  streaming            start the streaming job $JOB_NAME on the upload notifications
  streaming --update   replace the running streaming job in place (same name, state kept; set
                       TRANSFORM_NAME_MAPPINGS='Old=New,...' if a top-level transform was renamed)
  replay PATTERN       batch job over a gs:// glob, e.g. 'gs://$INPUT_BUCKET/**'; files that
                       already have a result row are skipped
  replay PATTERN --reprocess   ... and redo those too (e.g. after a model change)
  drain                stop the streaming job reading; it finishes what it has, then stops

After `--`, extra options as NAME=VALUE: a template parameter (see templates/metadata.json) goes
to --parameters, any other Beam or Dataflow pipeline option to --additional-pipeline-options, e.g.
  templates/run.sh streaming -- max_batch_size=16 experiments=enable_hot_key_logging

Workers: $WORKER_MACHINE_TYPE, running as audio-pipeline-worker, on the image the template was built
with (the spec's defaultEnvironment.sdkContainerImage; set IMAGE to run another one).

  --dry-run   print every command instead of running it (no Google Cloud access needed)
  --help      this text
EOF
}

parse_common_flags "$@"
load_settings
((${#ARGS[@]} > 0)) || die "give a command: streaming, replay or drain (see --help)"
COMMAND="${ARGS[0]}"
UPDATE=0
REPROCESS=0
PATTERN=""
EXTRA_PARAMETERS=()
for ((i = 1; i < ${#ARGS[@]}; i++)); do
  arg="${ARGS[i]}"
  if [[ "$arg" == "--" ]]; then
    EXTRA_PARAMETERS=("${ARGS[@]:i+1}")
    break
  fi
  case "$COMMAND:$arg" in
    streaming:--update) UPDATE=1 ;;
    replay:--reprocess) REPROCESS=1 ;;
    replay:*)
      [[ -z "$PATTERN" && "$arg" != -* ]] || die "unexpected argument for replay: $arg (see --help)"
      PATTERN="$arg"
      ;;
    *) die "unexpected argument for $COMMAND: $arg (see --help)" ;;
  esac
done

# The parameter names the template declares; any other name is a Beam/Dataflow pipeline option.
declared_parameter() {
  grep -q "\"name\": \"$1\"" "$TEMPLATES_DIR/metadata.json"
}

# One --parameters flag per value; a value holding a comma gets gcloud's ^|^ delimiter escape.
parameter_flags() {
  local entry
  PARAMETER_FLAGS=()
  for entry in "$@"; do
    if [[ "$entry" == *,* ]]; then
      [[ "$entry" != *'|'* ]] || die "a parameter value cannot hold both ',' and '|': $entry"
      PARAMETER_FLAGS+=("--parameters=^|^$entry")
    else
      PARAMETER_FLAGS+=("--parameters=$entry")
    fi
  done
}

# All pipeline options in one --additional-pipeline-options flag (gcloud keeps only the last of a
# repeated list flag); a value holding a comma gets gcloud's ^|^ delimiter escape.
pipeline_option_flags() {
  PIPELINE_OPTION_FLAGS=()
  (($#)) || return 0
  local joined delimiter=","
  if [[ "$*" == *,* ]]; then
    [[ "$*" != *'|'* ]] || die "pipeline option values cannot hold both ',' and '|': $*"
    delimiter="|"
  fi
  printf -v joined "%s$delimiter" "$@"
  joined="${joined%"$delimiter"}"
  [[ "$delimiter" == "," ]] || joined="^|^$joined"
  PIPELINE_OPTION_FLAGS=(--additional-pipeline-options="$joined")
}

active_job_id() {
  capture ACTIVE_JOB_ID gcloud dataflow jobs list --project="$PROJECT" --region="$REGION" --status=active \
    --filter="name=$JOB_NAME" --format="value(id)"
}

launch() {
  local job_name="$1"
  shift
  local parameters=("$@")
  local pipeline_options=() entry
  for entry in "${EXTRA_PARAMETERS[@]}"; do
    [[ "$entry" == *=* && "$entry" != =* ]] || die "extra options are NAME=VALUE, got: $entry"
    entry="${entry#--}"
    if declared_parameter "${entry%%=*}"; then
      parameters+=("$entry")
    else
      pipeline_options+=("$entry")
    fi
  done
  [[ -z "$MODEL_ENDPOINT" ]] || parameters+=("model_endpoint=$MODEL_ENDPOINT")
  # Without IMAGE the workers run the image named in the spec (build.sh writes it there).
  [[ -z "${IMAGE:-}" ]] || pipeline_options+=("sdk_container_image=$IMAGE")
  parameter_flags "${parameters[@]}"
  pipeline_option_flags "${pipeline_options[@]}"
  local flags=(--project="$PROJECT" --region="$REGION" --template-file-gcs-location="$TEMPLATE_FILE"
    --service-account-email="$WORKER_SA" --staging-location="$STAGING_LOCATION"
    --temp-location="$TEMP_LOCATION" --worker-machine-type="$WORKER_MACHINE_TYPE"
    --additional-user-labels=app=audio-pipeline "${NETWORK_FLAGS[@]}")
  run gcloud dataflow flex-template run "$job_name" "${flags[@]}" "${JOB_FLAGS[@]}" "${PARAMETER_FLAGS[@]}" \
    "${PIPELINE_OPTION_FLAGS[@]}"
}

COMMON_PARAMETERS=("output_table=$OUTPUT_TABLE" "error_table=$ERROR_TABLE"
  "spectrogram_location=$SPECTROGRAM_LOCATION" "model_uri=$MODEL_URI")

case "$COMMAND" in
  streaming)
    section "Streaming job $JOB_NAME on $SUBSCRIPTION_PATH"
    active_job_id
    if ((UPDATE)); then
      ((DRY_RUN)) || [[ -n "$ACTIVE_JOB_ID" ]] || die "no active job named $JOB_NAME to update"
    else
      ((DRY_RUN)) || [[ -z "$ACTIVE_JOB_ID" ]] ||
        die "$JOB_NAME is already running ($ACTIVE_JOB_ID): add --update to replace it in place, or drain it first"
    fi
    JOB_FLAGS=(--num-workers=1 --max-workers="$STREAMING_MAX_WORKERS" --enable-streaming-engine)
    if ((UPDATE)); then
      JOB_FLAGS+=(--update)
      [[ -z "${TRANSFORM_NAME_MAPPINGS:-}" ]] || JOB_FLAGS+=(--transform-name-mappings="$TRANSFORM_NAME_MAPPINGS")
    fi
    parameters=("input_subscription=$SUBSCRIPTION_PATH" "${COMMON_PARAMETERS[@]}")
    [[ -z "$MODEL_WATCH_PATTERN" ]] || parameters+=("model_watch_pattern=$MODEL_WATCH_PATTERN")
    launch "$JOB_NAME" "${parameters[@]}"
    ;;
  replay)
    [[ "$PATTERN" == gs://* ]] || die "replay needs a gs:// pattern, e.g. 'gs://$INPUT_BUCKET/**'"
    section "Batch replay of $PATTERN"
    JOB_FLAGS=(--max-workers="$REPLAY_MAX_WORKERS")
    parameters=("input_pattern=$PATTERN" "${COMMON_PARAMETERS[@]}")
    ((REPROCESS == 0)) || parameters+=("reprocess=true")
    launch "audio-pipeline-replay-$(date -u +%Y%m%d-%H%M%S)" "${parameters[@]}"
    ;;
  drain)
    section "Drain $JOB_NAME: stop reading Pub/Sub, finish in-flight files, then stop"
    active_job_id
    ((DRY_RUN)) || [[ -n "$ACTIVE_JOB_ID" ]] || die "no active job named $JOB_NAME"
    run gcloud dataflow jobs drain "$ACTIVE_JOB_ID" --project="$PROJECT" --region="$REGION"
    ;;
  *) die "unknown command $COMMAND: use streaming, replay or drain (see --help)" ;;
esac
