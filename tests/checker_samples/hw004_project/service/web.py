"""The app of the sample package."""

application = object()
