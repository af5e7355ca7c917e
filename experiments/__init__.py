"""Experiment layer of mnmf (the only place that may import Hydra)."""
