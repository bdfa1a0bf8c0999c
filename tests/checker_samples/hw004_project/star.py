"""A module whose names cannot be listed without importing it."""

from os.path import *  # noqa: F403
