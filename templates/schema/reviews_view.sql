SELECT audio_file, generation, start_seconds, end_seconds, label, confidence, model_version, verdict, reviewer, reviewed_at
FROM `@REVIEWS_TABLE@`
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (PARTITION BY audio_file, generation, CAST(start_seconds AS STRING), CAST(end_seconds AS STRING), label ORDER BY reviewed_at DESC) = 1
