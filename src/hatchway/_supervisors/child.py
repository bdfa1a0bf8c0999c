"""``python -m hatchway._supervisors.child``: the entry point of reload children and workers.

A fresh interpreter, not a multiprocessing spawn: the user's ``__main__`` is never re-run as
``__mp_main__``, so a script without an ``if __name__ == "__main__":`` guard cannot start a second supervisor.
"""

from __future__ import annotations

import sys

from hatchway._supervisors._child import main

if __name__ == "__main__":
    sys.exit(main())
