"""Decisions with no heavy imports: which files are media, what Whisper can make for a wanted language, what
the subtitle is called, which paths are inside the library, how languages and paths are named.

Every other layer may use this package; it imports nothing of the service but the settings (docs/architecture.md).
"""
