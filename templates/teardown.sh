#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Deletes what provision.sh created. Asks before deleting data (results, uploaded audio,
# spectrograms, models); --yes answers yes for a scripted teardown. Leaves the APIs enabled.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: PROJECT=my-project [REGION=us-central1] templates/teardown.sh [--dry-run] [--yes]

Refuses while an audio-pipeline Dataflow job is running (templates/run.sh drain first). Then
deletes, without asking: the bucket notification, the Pub/Sub subscription and topic, the
image repository, the Dataflow staging bucket, the two service accounts and their project
roles. Asks first, because they hold data: the BigQuery dataset (results and errors), and the
input, spectrogram and model buckets with everything in them. Anything you keep stays usable.

  --dry-run   print every command instead of running it (no Google Cloud access needed)
  --yes       do not ask; delete the data too
  --help      this text
EOF
}

parse_common_flags "$@"
((${#ARGS[@]} == 0)) || die "unexpected arguments: ${ARGS[*]} (see --help)"
load_settings
DRY_RUN_FINDS_RESOURCES=1

# For bindings that may already be gone: a failed removal is reported, not fatal.
run_tolerant() {
  run "$@" || echo "  (nothing to remove)" >&2
}

delete_bucket() {
  if exists gcloud storage buckets describe "gs://$1" --project="$PROJECT"; then
    run gcloud storage rm --recursive "gs://$1" --project="$PROJECT"
  fi
}

section "Running jobs"
capture ACTIVE_JOBS gcloud dataflow jobs list --project="$PROJECT" --region="$REGION" --status=active \
  --filter="name:audio-pipeline" --format="value(id,name)"
[[ -z "$ACTIVE_JOBS" || "$DRY_RUN" == 1 ]] ||
  die "drain or cancel these jobs first (templates/run.sh drain):"$'\n'"$ACTIVE_JOBS"

section "Cloud Scheduler reconcile job (provision.sh --reconcile-schedule)"
if exists gcloud scheduler jobs describe "$RECONCILE_JOB" --location="$REGION" --project="$PROJECT"; then
  run gcloud scheduler jobs delete "$RECONCILE_JOB" --location="$REGION" --project="$PROJECT" --quiet
fi

section "Cloud Storage notification on gs://$INPUT_BUCKET"
if exists gcloud storage buckets describe "gs://$INPUT_BUCKET" --project="$PROJECT"; then
  capture NOTIFICATIONS gcloud storage buckets notifications list "gs://$INPUT_BUCKET" --project="$PROJECT" \
    '--format=value("Notification Configuration".id,"Notification Configuration".topic)'
  if ((DRY_RUN)); then
    run gcloud storage buckets notifications delete \
      "projects/_/buckets/$INPUT_BUCKET/notificationConfigs/<id of each config publishing to $TOPIC>" \
      --project="$PROJECT"
  else
    while read -r id topic; do
      [[ "$topic" == */"$TOPIC_PATH" ]] || continue
      run gcloud storage buckets notifications delete \
        "projects/_/buckets/$INPUT_BUCKET/notificationConfigs/$id" --project="$PROJECT"
    done <<<"$NOTIFICATIONS"
  fi
fi

section "Pub/Sub"
if exists gcloud pubsub subscriptions describe "$SUBSCRIPTION" --project="$PROJECT"; then
  run gcloud pubsub subscriptions delete "$SUBSCRIPTION" --project="$PROJECT" --quiet
fi
if exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT"; then
  run gcloud pubsub topics delete "$TOPIC" --project="$PROJECT" --quiet
fi

section "Artifact Registry repository (the images; templates/build.sh rebuilds them)"
if exists gcloud artifacts repositories describe "$REPOSITORY" --location="$REGION" --project="$PROJECT"; then
  run gcloud artifacts repositories delete "$REPOSITORY" --location="$REGION" --project="$PROJECT" --quiet
fi

section "Dataflow staging bucket (staging, temp, template specs, build sources)"
delete_bucket "$DATAFLOW_BUCKET"

section "Service accounts and their project roles"
for role in roles/dataflow.worker roles/bigquery.jobUser roles/aiplatform.user; do
  run_tolerant gcloud projects remove-iam-policy-binding "$PROJECT" --member="serviceAccount:$WORKER_SA" \
    --role="$role" --condition=None --quiet
done
run_tolerant gcloud projects remove-iam-policy-binding "$PROJECT" --member="serviceAccount:$BUILD_SA" \
  --role=roles/logging.logWriter --condition=None --quiet
run_tolerant gcloud projects remove-iam-policy-binding "$PROJECT" --member="serviceAccount:$SCHEDULER_SA" \
  --role=roles/dataflow.developer --condition=None --quiet
for email in "$WORKER_SA" "$BUILD_SA" "$SCHEDULER_SA"; do
  if exists gcloud iam service-accounts describe "$email" --project="$PROJECT"; then
    run gcloud iam service-accounts delete "$email" --project="$PROJECT" --quiet
  fi
done

section "Data: BigQuery results"
if confirm "Delete BigQuery dataset $PROJECT:$DATASET with every result and error row?"; then
  if exists bq --project_id="$PROJECT" show --format=none "$PROJECT:$DATASET"; then
    run bq --project_id="$PROJECT" rm --recursive --force --dataset "$PROJECT:$DATASET"
  fi
else
  echo "kept $PROJECT:$DATASET" >&2
fi

section "Data: buckets"
for bucket in "$INPUT_BUCKET" "$OUTPUT_BUCKET" "$MODELS_BUCKET"; do
  if confirm "Delete gs://$bucket and every object in it?"; then
    delete_bucket "$bucket"
  else
    echo "kept gs://$bucket" >&2
  fi
done

section "Done (APIs stay enabled: other workloads may use them)"
