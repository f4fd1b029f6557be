# shellcheck shell=bash disable=SC2034  # the settings here are read by the scripts that source this file
# Shared by provision.sh, build.sh, run.sh and teardown.sh: the settings, the names derived from
# them, and the runner that either runs a command or (--dry-run) only prints it.
#
# Every name derives from PROJECT and REGION; set any variable below in the environment to
# override it. Sourced, never run.

TEMPLATES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$TEMPLATES_DIR")"
DRY_RUN=0
ASSUME_YES=0

settings_help() {
  cat <<'EOF'
Settings (environment variables; only PROJECT is required):
  PROJECT                Google Cloud project id
  REGION                 region of the buckets, dataset, image repository and jobs [us-central1]
  INPUT_BUCKET           bucket users upload audio to           [$PROJECT-audio-input]
  OUTPUT_BUCKET          bucket the spectrogram PNGs go to      [$PROJECT-audio-output]
  MODELS_BUCKET          bucket of exported models              [$PROJECT-audio-models]
  DATAFLOW_BUCKET        staging, temp, template specs, builds  [$PROJECT-audio-dataflow]
  TOPIC, SUBSCRIPTION    upload notifications                   [audio-uploads, audio-uploads-dataflow]
  DATASET                BigQuery dataset                       [audio_pipeline]
  RESULTS_TABLE          results table (errors: <it>_errors)    [results]
  REPOSITORY             Artifact Registry Docker repository    [audio-pipeline]
  MODEL_URI              model directory the jobs load          [gs://$MODELS_BUCKET/models/demo]
  MODEL_ENDPOINT         Vertex AI endpoint to classify on (optional; grants roles/aiplatform.user)
  MODEL_WATCH_PATTERN    streaming: metadata.json glob of new models to hot-load (optional)
  WORKER_MACHINE_TYPE    Dataflow worker type                   [n2-standard-4]
  STREAMING_MAX_WORKERS  streaming autoscaling ceiling          [5]
  REPLAY_MAX_WORKERS     batch replay autoscaling ceiling       [10]
  JOB_NAME               streaming job name (--update needs it unchanged) [audio-pipeline-streaming]
  SUBNETWORK             workers' subnetwork, for a network other than "default" (optional), e.g.
                         regions/REGION/subnetworks/NAME, or https://www.googleapis.com/compute/v1/
                         projects/HOST_PROJECT/regions/REGION/subnetworks/NAME (Shared VPC)
  DISABLE_PUBLIC_IPS     1: workers get no public IP (needs Private Google Access) [0]
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

# Consumes the flags every script shares (--dry-run, --yes, --help); the others land in ARGS.
parse_common_flags() {
  ARGS=()
  while (($#)); do
    case "$1" in
      --dry-run) DRY_RUN=1 ;;
      --yes | -y) ASSUME_YES=1 ;;
      --help | -h)
        usage
        echo
        settings_help
        exit 0
        ;;
      *) ARGS+=("$1") ;;
    esac
    shift
  done
}

load_settings() {
  [[ -n "${PROJECT:-}" ]] || die "set PROJECT to your Google Cloud project id (see --help)"
  REGION="${REGION:-us-central1}"
  INPUT_BUCKET="${INPUT_BUCKET:-$PROJECT-audio-input}"
  OUTPUT_BUCKET="${OUTPUT_BUCKET:-$PROJECT-audio-output}"
  MODELS_BUCKET="${MODELS_BUCKET:-$PROJECT-audio-models}"
  DATAFLOW_BUCKET="${DATAFLOW_BUCKET:-$PROJECT-audio-dataflow}"
  TOPIC="${TOPIC:-audio-uploads}"
  SUBSCRIPTION="${SUBSCRIPTION:-audio-uploads-dataflow}"
  DATASET="${DATASET:-audio_pipeline}"
  RESULTS_TABLE="${RESULTS_TABLE:-results}"
  # The pipeline's own default error table name (results.tables.default_error_table).
  ERRORS_TABLE="${RESULTS_TABLE}_errors"
  REPOSITORY="${REPOSITORY:-audio-pipeline}"
  MODEL_URI="${MODEL_URI:-gs://$MODELS_BUCKET/models/demo}"
  MODEL_ENDPOINT="${MODEL_ENDPOINT:-}"
  MODEL_WATCH_PATTERN="${MODEL_WATCH_PATTERN:-}"
  WORKER_MACHINE_TYPE="${WORKER_MACHINE_TYPE:-n2-standard-4}"
  STREAMING_MAX_WORKERS="${STREAMING_MAX_WORKERS:-5}"
  REPLAY_MAX_WORKERS="${REPLAY_MAX_WORKERS:-10}"
  JOB_NAME="${JOB_NAME:-audio-pipeline-streaming}"
  SUBNETWORK="${SUBNETWORK:-}"
  DISABLE_PUBLIC_IPS="${DISABLE_PUBLIC_IPS:-0}"
  # The workers' network, for the template's default environment (build.sh) and each launch (run.sh).
  NETWORK_FLAGS=()
  [[ -z "$SUBNETWORK" ]] || NETWORK_FLAGS+=(--subnetwork="$SUBNETWORK")
  ((DISABLE_PUBLIC_IPS == 0)) || NETWORK_FLAGS+=(--disable-public-ips)

  WORKER_SA="audio-pipeline-worker@$PROJECT.iam.gserviceaccount.com"
  BUILD_SA="audio-pipeline-build@$PROJECT.iam.gserviceaccount.com"
  # provision.sh --reconcile-schedule: the Cloud Scheduler job and the account it launches jobs as.
  SCHEDULER_SA="audio-pipeline-scheduler@$PROJECT.iam.gserviceaccount.com"
  RECONCILE_JOB="${RECONCILE_JOB:-audio-pipeline-reconcile}"
  IMAGE_REPO="$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/audio-pipeline"
  TEMPLATE_FILE="gs://$DATAFLOW_BUCKET/templates/audio-pipeline.json"
  STAGING_LOCATION="gs://$DATAFLOW_BUCKET/staging"
  TEMP_LOCATION="gs://$DATAFLOW_BUCKET/temp"
  SPECTROGRAM_LOCATION="gs://$OUTPUT_BUCKET/spectrograms"
  SUBSCRIPTION_PATH="projects/$PROJECT/subscriptions/$SUBSCRIPTION"
  TOPIC_PATH="projects/$PROJECT/topics/$TOPIC"
  OUTPUT_TABLE="$PROJECT:$DATASET.$RESULTS_TABLE"
  ERROR_TABLE="$PROJECT:$DATASET.$ERRORS_TABLE"
  # The pipeline writes events to <output_table>_events (results.tables.default_events_table).
  EVENTS_TABLE="$OUTPUT_TABLE"_events
  # Verdicts from the dashboard's Review page (results/schema.py's reviews table, suffix _reviews).
  REVIEWS_TABLE="$OUTPUT_TABLE"_reviews
}

# A command as one copy-pasteable shell line.
show() {
  local line
  printf -v line '%q ' "$@"
  printf '%s\n' "${line% }"
}

# Runs a command that changes something; a dry run prints it instead.
run() {
  if ((DRY_RUN)); then
    show "$@"
  else
    printf '+ %s\n' "$(show "$@")" >&2
    "$@"
  fi
}

# IAM bindings on a service account created seconds ago can fail until it has propagated.
run_retrying() {
  if ((DRY_RUN)); then
    show "$@"
    return
  fi
  local attempt
  for attempt in 1 2 3 4 5; do
    printf '+ %s\n' "$(show "$@")" >&2
    if "$@" >/dev/null; then
      return 0
    fi
    echo "  (attempt $attempt failed; retrying in 10 s)" >&2
    sleep 10
  done
  die "gave up after 5 attempts: $(show "$@")"
}

# A read-only probe: does the resource exist? A dry run prints it and answers so that the output
# lists every command a run on a fresh project would make: "missing" (provision.sh), or "present"
# where a script sets DRY_RUN_FINDS_RESOURCES=1 (teardown.sh).
DRY_RUN_FINDS_RESOURCES=0
exists() {
  if ((DRY_RUN)); then
    show "$@"
    ((DRY_RUN_FINDS_RESOURCES))
    return
  fi
  "$@" >/dev/null 2>&1
}

# capture VAR command...: VAR gets the command's output; a dry run prints the command and
# leaves a <VAR> placeholder in its place.
capture() {
  local var="$1"
  shift
  if ((DRY_RUN)); then
    show "$@"
    printf -v "$var" '%s' "<$var>"
  else
    local output
    output="$("$@")"
    printf -v "$var" '%s' "$output"
  fi
}

# Asks before something that deletes data; --yes answers for the user, a dry run only says so.
confirm() {
  if ((DRY_RUN)); then
    echo "# would ask: $1 [y/N]"
    return 0
  fi
  if ((ASSUME_YES)); then
    return 0
  fi
  local answer
  read -r -p "$1 [y/N] " answer
  [[ "$answer" == [yY] || "$answer" == [yY][eE][sS] ]]
}

section() {
  if ((DRY_RUN)); then
    printf '\n# %s\n' "$*"
  else
    printf '\n== %s\n' "$*" >&2
  fi
}
