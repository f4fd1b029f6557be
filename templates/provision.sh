#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Creates everything the pipeline needs in an empty Google Cloud project. Idempotent: each
# resource is described before it is created, and IAM bindings that already exist are no-ops,
# so a second run changes nothing.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: PROJECT=my-project [REGION=us-central1] templates/provision.sh [--reconcile-schedule CRON] [--dry-run]

Creates (only what is missing): the APIs, four buckets (input, spectrograms, models, Dataflow
staging), the Pub/Sub topic and subscription, the input bucket's OBJECT_FINALIZE notification
(JSON payload), the BigQuery dataset, results table (partitioned by day, clustered), error
table, events and reviews tables and the <results>_latest and <results>_reviews_latest views from templates/schema/, the Artifact Registry repository, and two service accounts:
  audio-pipeline-worker  runs the Dataflow launcher and workers, with only the roles they use
  audio-pipeline-build   runs the Cloud Build that builds the image (templates/build.sh)

  --reconcile-schedule CRON   also a Cloud Scheduler job (audio-pipeline-reconcile, UTC) that launches
              the Flex Template as a batch job with reconcile=true over gs://$INPUT_BUCKET/** on that
              schedule, e.g. "0 3 * * *": every upload without a row (a notification lost or never sent)
              gets one. It calls Dataflow as audio-pipeline-scheduler, which may launch jobs and act as
              the worker account, nothing else. Build the template first (templates/build.sh).
  --dry-run   print every command instead of running it (no Google Cloud access needed)
  --help      this text
EOF
}

parse_common_flags "$@"
RECONCILE_SCHEDULE=""
RECONCILE_GIVEN=0
for ((i = 0; i < ${#ARGS[@]}; i++)); do
  case "${ARGS[i]}" in
    --reconcile-schedule=*)
      RECONCILE_GIVEN=1
      RECONCILE_SCHEDULE="${ARGS[i]#*=}"
      ;;
    --reconcile-schedule)
      ((i + 1 < ${#ARGS[@]})) || die "--reconcile-schedule needs a cron schedule, e.g. \"0 3 * * *\""
      RECONCILE_GIVEN=1
      RECONCILE_SCHEDULE="${ARGS[++i]}"
      ;;
    *) die "unexpected argument: ${ARGS[i]} (see --help)" ;;
  esac
done
if ((RECONCILE_GIVEN)); then
  read -r -a cron_fields <<<"$RECONCILE_SCHEDULE"
  ((${#cron_fields[@]} == 5)) ||
    die "--reconcile-schedule takes 5 cron fields (minute hour day month weekday), got: $RECONCILE_SCHEDULE"
fi
load_settings
# shellcheck source=schema/tables.env
source "$TEMPLATES_DIR/schema/tables.env"

APIS=(dataflow.googleapis.com compute.googleapis.com storage.googleapis.com pubsub.googleapis.com
  bigquery.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com iam.googleapis.com
  logging.googleapis.com monitoring.googleapis.com)
[[ -z "$MODEL_ENDPOINT" ]] || APIS+=(aiplatform.googleapis.com)
[[ -z "$RECONCILE_SCHEDULE" ]] || APIS+=(cloudscheduler.googleapis.com)

ensure_bucket() {
  local bucket="$1"
  shift
  exists gcloud storage buckets describe "gs://$bucket" --project="$PROJECT" ||
    run gcloud storage buckets create "gs://$bucket" --project="$PROJECT" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention "$@"
}

grant_bucket() {
  run_retrying gcloud storage buckets add-iam-policy-binding "gs://$1" --member="$2" --role="$3"
}

grant_project() {
  run_retrying gcloud projects add-iam-policy-binding "$PROJECT" --member="$1" --role="$2" --condition=None
}

notification_exists() {
  local probe=(gcloud storage buckets notifications list "gs://$INPUT_BUCKET" --project="$PROJECT"
    '--format=value("Notification Configuration".topic)')
  if ((DRY_RUN)); then
    show "${probe[@]}"
    return 1
  fi
  local topics
  topics="$("${probe[@]}")"
  grep -q "/$TOPIC_PATH\$" <<<"$topics"
}

json_string() {
  local value="${1//\\/\\\\}"
  printf '"%s"' "${value//\"/\\\"}"
}

# LAUNCH_BODY: the flexTemplates:launch request of a batch reconcile, as templates/run.sh replay would
# launch it (same parameters, worker account, locations and network), with reconcile=true. Dataflow refuses
# a second job of the same name while one runs, so runs never overlap.
reconcile_launch_body() {
  local parameters=("input_pattern=gs://$INPUT_BUCKET/**" "reconcile=true" "output_table=$OUTPUT_TABLE"
    "error_table=$ERROR_TABLE" "spectrogram_location=$SPECTROGRAM_LOCATION" "model_uri=$MODEL_URI")
  [[ -z "$MODEL_ENDPOINT" ]] || parameters+=("model_endpoint=$MODEL_ENDPOINT")
  local entry json="" environment
  for entry in "${parameters[@]}"; do
    json+="${json:+, }$(json_string "${entry%%=*}"): $(json_string "${entry#*=}")"
  done
  environment="\"serviceAccountEmail\": $(json_string "$WORKER_SA"), \"tempLocation\": $(json_string "$TEMP_LOCATION")"
  environment+=", \"stagingLocation\": $(json_string "$STAGING_LOCATION")"
  environment+=", \"machineType\": $(json_string "$WORKER_MACHINE_TYPE"), \"maxWorkers\": $REPLAY_MAX_WORKERS"
  environment+=", \"additionalUserLabels\": {\"app\": \"audio-pipeline\"}"
  [[ -z "$SUBNETWORK" ]] || environment+=", \"subnetwork\": $(json_string "$SUBNETWORK")"
  ((DISABLE_PUBLIC_IPS == 0)) || environment+=", \"ipConfiguration\": \"WORKER_IP_PRIVATE\""
  LAUNCH_BODY="{\"launchParameter\": {\"jobName\": $(json_string "$RECONCILE_JOB")"
  LAUNCH_BODY+=", \"containerSpecGcsPath\": $(json_string "$TEMPLATE_FILE"), \"parameters\": {$json}"
  LAUNCH_BODY+=", \"environment\": {$environment}}}"
}

ensure_service_account() {
  local email="$1" display_name="$2"
  exists gcloud iam service-accounts describe "$email" --project="$PROJECT" ||
    run gcloud iam service-accounts create "${email%%@*}" --project="$PROJECT" --display-name="$display_name"
}

section "APIs"
run gcloud services enable "${APIS[@]}" --project="$PROJECT"

section "Buckets: input audio, spectrograms, models, Dataflow staging/temp/templates/build sources"
ensure_bucket "$INPUT_BUCKET"
ensure_bucket "$OUTPUT_BUCKET"
ensure_bucket "$MODELS_BUCKET"
# Staging and temp files are rewritten constantly; soft delete would bill every deleted copy for a week.
ensure_bucket "$DATAFLOW_BUCKET" --soft-delete-duration=0

section "Pub/Sub: upload notifications"
exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT" ||
  run gcloud pubsub topics create "$TOPIC" --project="$PROJECT"
# Dataflow extends ack deadlines itself; 7 days of retention lets a stopped job catch up.
exists gcloud pubsub subscriptions describe "$SUBSCRIPTION" --project="$PROJECT" ||
  run gcloud pubsub subscriptions create "$SUBSCRIPTION" --project="$PROJECT" --topic="$TOPIC" \
    --ack-deadline=60 --message-retention-duration=7d --expiration-period=never

section "Cloud Storage notification: OBJECT_FINALIZE on gs://$INPUT_BUCKET -> $TOPIC (JSON payload)"
capture GCS_SERVICE_AGENT gcloud storage service-agent --project="$PROJECT"
run_retrying gcloud pubsub topics add-iam-policy-binding "$TOPIC" --project="$PROJECT" \
  --member="serviceAccount:$GCS_SERVICE_AGENT" --role=roles/pubsub.publisher
# A second config for the same topic would publish every upload twice: create it only once.
notification_exists ||
  run gcloud storage buckets notifications create "gs://$INPUT_BUCKET" --project="$PROJECT" \
    --topic="$TOPIC_PATH" --event-types=OBJECT_FINALIZE --payload-format=json --skip-topic-setup

section "BigQuery: dataset, results, error, events and reviews tables (schema from results/schema.py via templates/schema/)"
exists bq --project_id="$PROJECT" show --format=none "$PROJECT:$DATASET" ||
  run bq --project_id="$PROJECT" mk --dataset --location="$REGION" \
    --description="Audio pipeline results" "$PROJECT:$DATASET"
if exists bq --project_id="$PROJECT" show --format=none "$OUTPUT_TABLE"; then
  # A results table from before event_count gets it (NULLABLE; the view below selects it).
  run bq --project_id="$PROJECT" update --schema="$TEMPLATES_DIR/schema/processed.json" "$OUTPUT_TABLE"
else
  run bq --project_id="$PROJECT" mk --table --schema="$TEMPLATES_DIR/schema/processed.json" \
    --time_partitioning_type=DAY --time_partitioning_field="$RESULTS_PARTITION_FIELD" \
    --clustering_fields="$RESULTS_CLUSTER_FIELDS" \
    --description="One row per processed audio file" "$OUTPUT_TABLE"
fi
if exists bq --project_id="$PROJECT" show --format=none "$ERROR_TABLE"; then
  # A table provisioned before a column existed gets it (new columns are NULLABLE; same schema: no change).
  run bq --project_id="$PROJECT" update --schema="$TEMPLATES_DIR/schema/errors.json" "$ERROR_TABLE"
else
  run bq --project_id="$PROJECT" mk --table --schema="$TEMPLATES_DIR/schema/errors.json" \
    --time_partitioning_type=DAY --time_partitioning_field="$ERRORS_PARTITION_FIELD" \
    --clustering_fields="$ERRORS_CLUSTER_FIELDS" \
    --description="One row per audio file that failed" "$ERROR_TABLE"
fi
exists bq --project_id="$PROJECT" show --format=none "$EVENTS_TABLE" ||
  run bq --project_id="$PROJECT" mk --table --schema="$TEMPLATES_DIR/schema/events.json" \
    --time_partitioning_type=DAY --time_partitioning_field="$EVENTS_PARTITION_FIELD" \
    --clustering_fields="$EVENTS_CLUSTER_FIELDS" \
    --description="One row per event (what was heard when) in a processed audio file" "$EVENTS_TABLE"
# Verdicts given on the dashboard's Review page; never written by the pipeline.
exists bq --project_id="$PROJECT" show --format=none "$REVIEWS_TABLE" ||
  run bq --project_id="$PROJECT" mk --table --schema="$TEMPLATES_DIR/schema/reviews.json" \
    --time_partitioning_type=DAY --time_partitioning_field="$REVIEWS_PARTITION_FIELD" \
    --clustering_fields="$REVIEWS_CLUSTER_FIELDS" \
    --description="One row per verdict a person gave a detection (Review page)" "$REVIEWS_TABLE"
# Readers use the view: one row per (audio_file, generation), the newest result, else the newest error
# (streaming inserts are at-least-once and --reprocess appends). Its SQL comes from results/schema.py.
LATEST_VIEW="${OUTPUT_TABLE}${LATEST_VIEW_SUFFIX}"
VIEW_SQL="$(tr '\n' ' ' <"$TEMPLATES_DIR/schema/latest_view.sql")"
VIEW_SQL="${VIEW_SQL//@RESULTS_TABLE@/${OUTPUT_TABLE/:/.}}"
VIEW_SQL="${VIEW_SQL//@ERRORS_TABLE@/${ERROR_TABLE/:/.}}"
if exists bq --project_id="$PROJECT" show --format=none "$LATEST_VIEW"; then
  run bq --project_id="$PROJECT" update --use_legacy_sql=false --view="$VIEW_SQL" "$LATEST_VIEW"
else
  run bq --project_id="$PROJECT" mk --use_legacy_sql=false --view="$VIEW_SQL" \
    --description="One row per audio file version: the newest result, else the newest error" "$LATEST_VIEW"
fi

# The newest verdict per detection (reviewing one again adds a row; readers take the newest).
REVIEWS_VIEW="${REVIEWS_TABLE}${LATEST_VIEW_SUFFIX}"
REVIEWS_SQL="$(tr '\n' ' ' <"$TEMPLATES_DIR/schema/reviews_view.sql")"
REVIEWS_SQL="${REVIEWS_SQL//@REVIEWS_TABLE@/${REVIEWS_TABLE/:/.}}"
if exists bq --project_id="$PROJECT" show --format=none "$REVIEWS_VIEW"; then
  run bq --project_id="$PROJECT" update --use_legacy_sql=false --view="$REVIEWS_SQL" "$REVIEWS_VIEW"
else
  run bq --project_id="$PROJECT" mk --use_legacy_sql=false --view="$REVIEWS_SQL" \
    --description="One row per reviewed detection: its newest verdict" "$REVIEWS_VIEW"
fi

section "Artifact Registry: the pipeline image"
exists gcloud artifacts repositories describe "$REPOSITORY" --location="$REGION" --project="$PROJECT" ||
  run gcloud artifacts repositories create "$REPOSITORY" --location="$REGION" --project="$PROJECT" \
    --repository-format=docker --description="Audio pipeline: Flex Template launcher and worker image"

section "Service accounts"
ensure_service_account "$WORKER_SA" "Audio pipeline Dataflow worker"
ensure_service_account "$BUILD_SA" "Audio pipeline image build"

section "Worker roles, each on only the resource it is needed for (docs/deploy.md)"
WORKER="serviceAccount:$WORKER_SA"
grant_project "$WORKER" roles/dataflow.worker
grant_project "$WORKER" roles/bigquery.jobUser
run_retrying gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --project="$PROJECT" \
  --member="$WORKER" --role=roles/pubsub.subscriber
run_retrying gcloud pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --project="$PROJECT" \
  --member="$WORKER" --role=roles/pubsub.viewer
grant_bucket "$INPUT_BUCKET" "$WORKER" roles/storage.objectViewer
grant_bucket "$OUTPUT_BUCKET" "$WORKER" roles/storage.objectUser
grant_bucket "$MODELS_BUCKET" "$WORKER" roles/storage.objectViewer
grant_bucket "$DATAFLOW_BUCKET" "$WORKER" roles/storage.objectAdmin
run_retrying bq --project_id="$PROJECT" add-iam-policy-binding --dataset \
  --member="$WORKER" --role=roles/bigquery.dataEditor "$PROJECT:$DATASET"
run_retrying gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" --location="$REGION" \
  --project="$PROJECT" --member="$WORKER" --role=roles/artifactregistry.reader
[[ -z "$MODEL_ENDPOINT" ]] || grant_project "$WORKER" roles/aiplatform.user

section "Build roles"
BUILDER="serviceAccount:$BUILD_SA"
run_retrying gcloud artifacts repositories add-iam-policy-binding "$REPOSITORY" --location="$REGION" \
  --project="$PROJECT" --member="$BUILDER" --role=roles/artifactregistry.writer
grant_bucket "$DATAFLOW_BUCKET" "$BUILDER" roles/storage.objectViewer
grant_project "$BUILDER" roles/logging.logWriter

if [[ -n "$RECONCILE_SCHEDULE" ]]; then
  section "Cloud Scheduler: reconcile gs://$INPUT_BUCKET/** with the tables on \"$RECONCILE_SCHEDULE\" (UTC)"
  ensure_service_account "$SCHEDULER_SA" "Audio pipeline reconcile scheduler"
  SCHEDULER="serviceAccount:$SCHEDULER_SA"
  # Launch Dataflow jobs, run them as the worker account (on that account only), read the template spec.
  grant_project "$SCHEDULER" roles/dataflow.developer
  run_retrying gcloud iam service-accounts add-iam-policy-binding "$WORKER_SA" --project="$PROJECT" \
    --member="$SCHEDULER" --role=roles/iam.serviceAccountUser
  grant_bucket "$DATAFLOW_BUCKET" "$SCHEDULER" roles/storage.objectViewer
  reconcile_launch_body
  JOB_SETTINGS=(--location="$REGION" --project="$PROJECT" --schedule="$RECONCILE_SCHEDULE" --time-zone=Etc/UTC
    --uri="https://dataflow.googleapis.com/v1b3/projects/$PROJECT/locations/$REGION/flexTemplates:launch"
    --http-method=post --message-body="$LAUNCH_BODY" --oauth-service-account-email="$SCHEDULER_SA"
    --oauth-token-scope=https://www.googleapis.com/auth/cloud-platform)
  if exists gcloud scheduler jobs describe "$RECONCILE_JOB" --location="$REGION" --project="$PROJECT"; then
    run gcloud scheduler jobs update http "$RECONCILE_JOB" "${JOB_SETTINGS[@]}" \
      --update-headers=Content-Type=application/json
  else
    run gcloud scheduler jobs create http "$RECONCILE_JOB" "${JOB_SETTINGS[@]}" \
      --headers=Content-Type=application/json \
      --description="Batch reconcile: every upload without a row in $OUTPUT_TABLE gets one"
  fi
fi

section "Done"
cat <<EOF
# Provisioned project $PROJECT in $REGION. Next:
#   upload a model:  gcloud storage cp --recursive artifacts/models/demo gs://$MODELS_BUCKET/models/
#   build:           PROJECT=$PROJECT REGION=$REGION templates/build.sh
EOF
