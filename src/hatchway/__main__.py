"""``python -m hatchway``: the same command line as ``hatchway``."""

from hatchway._cli import main

if __name__ == "__main__":
    main()
