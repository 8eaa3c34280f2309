"""Training: three stages as data, modality-homogeneous batches, a frozen-encoder feature cache, resume, torchrun."""
