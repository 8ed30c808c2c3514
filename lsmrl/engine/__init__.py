"""Training, feature extraction and evaluation (two-stage LSMRL, CLIP-ReID style)."""
