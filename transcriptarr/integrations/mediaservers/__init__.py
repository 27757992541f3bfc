"""Jellyfin, Emby, Plex and Tautulli webhooks: queue what was added or played, refresh it once subtitled.

    event = jellyfin.parse_webhook(body)        # MediaEvent, or Ignored (PayloadError when malformed)
    files = await server.files(event.item_id)   # when the payload names no file: ask the server
    outcome = await queue_media_file(...)       # queueing.py: the library decides, webhook priority

One small module per server parses its payload (jellyfin.py, emby.py, plex.py,
tautulli.py) and, for the three servers, talks to its API (mediabrowser.py for
Jellyfin and Emby, plex.py). servers.py is the table of them all, one entry per
server: its parser, its webhook routes, its OpenAPI text, the two settings of its
API and the client that finds files and refreshes items; the HTTP routes
(transcriptarr/api/webhooks.py, api/subgen_routes.py), the OpenAPI document and
the settings wiring read it. refresh.py is the follow-up that asks the server to
look at an item again after its subtitle was written.
"""
