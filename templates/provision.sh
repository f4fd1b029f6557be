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
Usage: PROJECT=my-project [REGION=us-central1] templates/provision.sh [--dry-run]

Creates (only what is missing): the APIs, four buckets (input, spectrograms, models, Dataflow
staging), the Pub/Sub topic and subscription, the input bucket's OBJECT_FINALIZE notification
(JSON payload), the BigQuery dataset, results table (partitioned by day, clustered), error
table, events and reviews tables and the <results>_latest and <results>_reviews_latest views from templates/schema/, the Artifact Registry repository, and two service accounts:
  audio-pipeline-worker  runs the Dataflow launcher and workers, with only the roles they use
  audio-pipeline-build   runs the Cloud Build that builds the image (templates/build.sh)

  --dry-run   print every command instead of running it (no Google Cloud access needed)
  --help      this text
EOF
}

parse_common_flags "$@"
((${#ARGS[@]} == 0)) || die "unexpected arguments: ${ARGS[*]} (see --help)"
load_settings
# shellcheck source=schema/tables.env
source "$TEMPLATES_DIR/schema/tables.env"

APIS=(dataflow.googleapis.com compute.googleapis.com storage.googleapis.com pubsub.googleapis.com
  bigquery.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com iam.googleapis.com
  logging.googleapis.com monitoring.googleapis.com)
[[ -z "$MODEL_ENDPOINT" ]] || APIS+=(aiplatform.googleapis.com)

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

section "Done"
cat <<EOF
# Provisioned project $PROJECT in $REGION. Next:
#   upload a model:  gcloud storage cp --recursive artifacts/models/demo gs://$MODELS_BUCKET/models/
#   build:           PROJECT=$PROJECT REGION=$REGION templates/build.sh
EOF
