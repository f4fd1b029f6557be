SELECT outcome, audio_file, generation, spectrogram_image, label, confidence, scores, model_version, event_count, duration_seconds, sample_rate_hz, channels, event_time, processed_at, seen_at, stage, error_type, message, failed_at, retryable, attempts
FROM (
  SELECT 'result' AS outcome, audio_file, generation, spectrogram_image, label, confidence, scores, model_version, event_count, duration_seconds, sample_rate_hz, channels, event_time, processed_at, seen_at, CAST(NULL AS STRING) AS stage, CAST(NULL AS STRING) AS error_type, CAST(NULL AS STRING) AS message, CAST(NULL AS TIMESTAMP) AS failed_at, CAST(NULL AS BOOL) AS retryable, CAST(NULL AS INT64) AS attempts
  FROM `@RESULTS_TABLE@`
  UNION ALL
  SELECT 'error' AS outcome, audio_file, generation, CAST(NULL AS STRING) AS spectrogram_image, CAST(NULL AS STRING) AS label, CAST(NULL AS FLOAT64) AS confidence, CAST(NULL AS ARRAY<STRUCT<label STRING, score FLOAT64>>) AS scores, CAST(NULL AS STRING) AS model_version, CAST(NULL AS INT64) AS event_count, CAST(NULL AS FLOAT64) AS duration_seconds, CAST(NULL AS INT64) AS sample_rate_hz, CAST(NULL AS INT64) AS channels, CAST(NULL AS TIMESTAMP) AS event_time, CAST(NULL AS TIMESTAMP) AS processed_at, CAST(NULL AS TIMESTAMP) AS seen_at, stage, error_type, message, failed_at, retryable, attempts
  FROM `@ERRORS_TABLE@`
)
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY audio_file, generation ORDER BY CASE WHEN outcome = 'result' THEN 0 ELSE 1 END, COALESCE(processed_at, failed_at) DESC) = 1
