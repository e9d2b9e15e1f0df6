"""Studies and benchmarks of the pipeline, kept apart from the production code.

``honesty``: does the label engine behave on simulated frames as on real ones.
"""
