"""Pure audio functions and the pipeline's records: decoding, spectrograms, safe names, synthetic sounds (no Beam)."""
