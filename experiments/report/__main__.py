"""``python -m experiments.report PATH``: see :mod:`experiments.report`."""

from experiments.report import main

raise SystemExit(main())
