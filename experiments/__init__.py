"""Experiment layer of mnmf (the only place that may import Hydra).

Importing it (``mnmf-run``, ``mnmf-report``, ``python -m experiments.seeds``) shortens
OpenBLAS's idle-thread spin to 2²⁰ clock ticks (about 0.4 ms) unless
``OPENBLAS_THREAD_TIMEOUT`` is already set: after every multithreaded BLAS call its
workers otherwise busy-wait for about 0.1 s and take the cores from the fit that
follows (docs/design.md §6). It only acts when this package is imported before numpy
loads OpenBLAS, as in these entry points and the processes their launchers start.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
