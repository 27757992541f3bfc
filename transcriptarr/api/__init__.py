"""HTTP API: the Bazarr provider routes, status and control, metrics and the status page."""

from transcriptarr.api.app import create_app, serve
from transcriptarr.api.config import ApiConfig

__all__ = ["ApiConfig", "create_app", "serve"]
