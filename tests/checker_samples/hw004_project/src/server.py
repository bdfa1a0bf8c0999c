"""An app under an app_dir."""

app = object()
