"""Jellyfin, Emby, Plex and Tautulli webhooks: queue what was added or played, refresh it once subtitled.

    event = jellyfin.parse_webhook(body)        # MediaEvent, or Ignored (PayloadError when malformed)
    files = await server.files(event.item_id)   # when the payload names no file: ask the server
    outcome = await queue_media_file(...)       # queueing.py: the library decides, webhook priority

One small module per server parses its payload (jellyfin.py, emby.py, plex.py,
tautulli.py) and, for the three servers, talks to its API (mediabrowser.py for
Jellyfin and Emby, plex.py). refresh.py is the follow-up that asks the server to
look at an item again after its subtitle was written. The HTTP routes are in
transcriptarr/api/webhooks.py.
"""
