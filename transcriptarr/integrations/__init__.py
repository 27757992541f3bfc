"""What connects Transcriptarr to a media stack: path mapping, media servers, Bazarr, notifications."""
