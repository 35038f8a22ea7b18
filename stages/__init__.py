"""The MNIST pipeline's stages: one script per DVC stage, plus the small modules they share."""
