"""Baseline bone segmentation model (issue 11): a U-Net trained on a release's labels.

``data`` reads a release's kept frames by split and makes training batches (NumPy
only); ``net`` builds the U-Net (ResNet encoder, plain torch); ``train`` fits it (Dice +
BCE, Adam, step decay, per-epoch checkpoints that a killed run resumes from);
``predict`` writes predicted masks; ``score`` scores mask sets with
:mod:`ultrabones.evaluate`; ``files`` holds this sub-package's file I/O (checkpoints,
model card, PNG masks). Everything that imports torch needs the ``model`` extra
(``make setup-model``); the label workflow never does.
"""
