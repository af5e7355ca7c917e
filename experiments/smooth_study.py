"""``python -m experiments.smooth_study``: the smooth IS-NMF study as a script.

The study itself is the ``smooth_study`` task (:mod:`experiments.tasks.smooth_study`);
this module only gives it a command line (``--help`` lists the settings).
"""

from experiments.tasks.smooth_study import main

if __name__ == "__main__":
    main()
