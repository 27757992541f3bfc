"""Transcriptarr: finds media without subtitles and writes them with faster-whisper."""

__version__ = "0.1.0"
