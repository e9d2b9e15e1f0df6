"""Label engine: objective, refinement, physics filter and labels for one frame."""
