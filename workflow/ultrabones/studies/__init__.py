"""Studies and benchmarks of the pipeline, kept apart from the production code.

``bench``: the label engine's speed and outcome on a record, scored on the
simulator's truth.
``honesty``: does the label engine behave on simulated frames as on real ones.
``appearance``: do simulated frames look like real ones (grey levels, bone echo,
speckle, spectrum), and the figures that show it.
``misalignment``: how far a simulated record's labels lie from the true ones.
``model_baseline``: the U-Net against trivial segmenters and truths on a release.
"""
