"""Simulator of tracked-ultrasound cadaver cohorts with ground truth (issue 3)."""
