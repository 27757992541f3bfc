"""Tests of the media-server and Bazarr integrations against fakes and real services on loopback."""
