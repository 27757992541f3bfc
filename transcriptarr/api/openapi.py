"""The OpenAPI 3.1 document of every route, written by hand (a test checks it covers the router)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from transcriptarr import __version__
from transcriptarr.api import openai_openapi
from transcriptarr.api.keys import CONFIG
from transcriptarr.api.output import OUTPUTS
from transcriptarr.db.models import JobState, Source
from transcriptarr.integrations.mediaservers.servers import JSON, MULTIPART, SERVERS

_TEXT_ERROR = {"text/plain": {"schema": {"type": "string", "pattern": "^ERROR: "}}}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*codes: int, text: bool = False) -> dict[str, Any]:
    content = _TEXT_ERROR if text else _JSON_ERROR
    return {str(code): {"description": _REASONS[code], "content": content} for code in codes}


_REASONS = {
    400: "Bad request: the message says what is wrong.",
    401: "Missing or wrong API key (when API_KEY is set).",
    403: "Forbidden: a path outside LIBRARY_PATHS, or a client outside PROVIDER_ALLOWED_NETWORKS.",
    404: "Not found (provider routes: provider mode is off).",
    408: "The upload stalled.",
    409: "The job's state does not allow this.",
    413: "The upload is larger than MAX_UPLOAD_MB.",
    422: "The audio could not be transcribed, or holds no speech.",
    500: "The transcription failed for a reason of ours.",
    503: "Not available now (shutting down, scanning not configured, database down).",
    504: "No result within MAX_JOB_MINUTES; the job goes on, ask again.",
}

_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
}
_SECURED: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]
_HTML = {"text/html": {"schema": {"type": "string"}}}

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["audio_file"],
                "properties": {"audio_file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


def _provider_paths() -> dict[str, Any]:
    bool_param = {"type": "string", "enum": ["true", "false"]}
    asr_params = [
        {"name": "task", "in": "query", "schema": {"type": "string", "enum": ["transcribe", "translate"]}},
        {"name": "language", "in": "query", "schema": {"type": "string"}, "description": "Whisper code of the audio."},
        {"name": "output", "in": "query", "schema": {"type": "string", "enum": list(OUTPUTS)}},
        {"name": "encode", "in": "query", "schema": bool_param, "description": "false: raw s16le 16 kHz mono PCM."},
        {"name": "video_file", "in": "query", "schema": {"type": "string"}},
        {"name": "initial_prompt", "in": "query", "schema": {"type": "string"}},
        {"name": "vad_filter", "in": "query", "schema": bool_param},
        {"name": "word_timestamps", "in": "query", "schema": bool_param},
    ]
    return {
        "/asr": {
            "post": {
                "tags": ["provider"],
                "summary": "Transcribe or translate an upload (whisper-asr-webservice compatible)",
                "description": "Interim `100 Continue` responses keep the client's read timeout from firing.",
                "parameters": asr_params,
                "requestBody": _UPLOAD_BODY,
                "responses": {
                    "200": {
                        "description": "The subtitle or transcript.",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "text/vtt": {"schema": {"type": "string"}},
                            "text/tab-separated-values": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    **_errors(400, 403, 404, 408, 409, 413, 422, 500, 503, 504, text=True),
                },
            }
        },
        "/detect-language": {
            "post": {
                "tags": ["provider"],
                "summary": "Detect the spoken language from the first minutes of an upload",
                "parameters": [asr_params[3], asr_params[4]],
                "requestBody": _UPLOAD_BODY,
                "responses": {
                    "200": {
                        "description": "The language, or `{}` when it cannot tell.",
                        "content": _json(_ref("Language")),
                    },
                    **_errors(400, 408, 413),
                    **_errors(403, 404, text=True),
                },
            }
        },
        "/status": {
            "get": {
                "tags": ["provider"],
                "summary": "Version (Bazarr's Test connection button)",
                "responses": {
                    "200": {
                        "description": "The version.",
                        "content": _json(
                            {"type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}
                        ),
                    },
                    **_errors(403, 404, text=True),
                },
            }
        },
    }


def _control_paths() -> dict[str, Any]:
    job_answer = _json({"type": "object", "required": ["job"], "properties": {"job": _ref("Job")}})
    secured = {"security": _SECURED}
    return {
        "/": {
            "get": {
                **secured,
                "tags": ["status"],
                "summary": "Status page (HTML); with API_KEY set, also the cookie from /login",
                "responses": {
                    "200": {"description": "HTML page.", "content": _HTML},
                    "303": {"description": "No key given: to the login form."},
                },
            }
        },
        "/login": {
            "get": {
                "tags": ["status"],
                "summary": "Login form for the status page (no API_KEY set: to the page)",
                "responses": {
                    "200": {"description": "HTML form.", "content": _HTML},
                    "303": {"description": "No API_KEY is set: to the page."},
                },
            },
            "post": {
                "tags": ["status"],
                "summary": "Log in with the API key: sets an HttpOnly, SameSite=Strict cookie for reading",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object", "properties": {"key": {"type": "string"}}}
                        }
                    },
                },
                "responses": {
                    "303": {"description": "Right key (or none set): to the page, with the cookie."},
                    "401": {"description": "Wrong key: the form again.", "content": _HTML},
                },
            },
        },
        "/logout": {
            "post": {
                "tags": ["status"],
                "summary": "Forget the login cookie",
                "responses": {"303": {"description": "To the login form."}},
            }
        },
        "/health": {
            "get": {
                "tags": ["status"],
                "summary": "Liveness, database and worker state",
                "responses": {
                    "200": {"description": "Healthy.", "content": _json(_ref("Health"))},
                    "503": {
                        "description": "Degraded: the database does not answer (`database.state` unavailable), or "
                        "a write has waited over 5 s, e.g. behind another process's SQLite write lock (degraded).",
                        "content": _json(_ref("Health")),
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                **secured,
                "tags": ["status"],
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(401),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "tags": ["status"],
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI document.", "content": _json({"type": "object"})}},
            }
        },
        "/api/status": {
            "get": {
                **secured,
                "tags": ["status"],
                "summary": "Mode, version, model, nodes and their workers, queue counts and ETA",
                "responses": {"200": {"description": "Status.", "content": _json(_ref("Status"))}, **_errors(401)},
            }
        },
        "/api/events": {
            "get": {
                **secured,
                "tags": ["status"],
                "summary": "Live job events (server-sent events)",
                "responses": {
                    "200": {
                        "description": "An event stream.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(401),
                },
            }
        },
        "/api/jobs": {
            "get": {
                **secured,
                "tags": ["jobs"],
                "summary": "Jobs, newest first",
                "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string", "enum": [s.value for s in JobState]}},
                    {"name": "source", "in": "query", "schema": {"type": "string", "enum": [s.value for s in Source]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 1000000000},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of jobs.",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["jobs", "limit", "offset"],
                                "properties": {
                                    "jobs": {"type": "array", "items": _ref("Job")},
                                    "limit": {"type": "integer"},
                                    "offset": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **_errors(400, 401),
                },
            },
            "post": {
                **secured,
                "tags": ["jobs"],
                "summary": "Queue a media file of a library",
                "requestBody": {"required": True, "content": _json(_ref("NewJob"))},
                "responses": {
                    "201": {"description": "Queued.", "content": _json(_ref("Enqueued"))},
                    "200": {"description": "Already queued or done; nothing new.", "content": _json(_ref("Enqueued"))},
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/api/jobs/{id}": {
            "get": {
                **secured,
                "tags": ["jobs"],
                "summary": "One job",
                "parameters": [_JOB_ID],
                "responses": {"200": {"description": "The job.", "content": job_answer}, **_errors(400, 401, 404)},
            },
            "patch": {
                **secured,
                "tags": ["jobs"],
                "summary": "Change a job's priority",
                "parameters": [_JOB_ID],
                "requestBody": {
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["priority"],
                            "additionalProperties": False,
                            "properties": {"priority": {"type": "integer", "minimum": -1000000, "maximum": 1000000}},
                        }
                    ),
                },
                "responses": {"200": {"description": "The job.", "content": job_answer}, **_errors(400, 401, 404)},
            },
        },
        "/api/jobs/{id}/cancel": {
            "post": {
                **secured,
                "tags": ["jobs"],
                "summary": "Cancel a job (a running one stops at its next checkpoint)",
                "parameters": [_JOB_ID],
                "responses": {
                    "202": {"description": "Cancelled, or cancellation requested.", "content": job_answer},
                    **_errors(400, 401, 404, 409),
                },
            }
        },
        "/api/jobs/{id}/retry": {
            "post": {
                **secured,
                "tags": ["jobs"],
                "summary": "Queue a failed or cancelled job again",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": {"description": "Queued again.", "content": job_answer},
                    **_errors(400, 401, 404, 409),
                },
            }
        },
        "/api/scan": {
            "post": {
                **secured,
                "tags": ["jobs"],
                "summary": "Rescan the libraries now",
                "responses": {
                    "202": {"description": "Scan done or started.", "content": _json({"type": "object"})},
                    **_errors(401, 503),
                },
            }
        },
    }


def _webhook_paths() -> dict[str, Any]:
    """POST /webhooks/{route} (api/webhooks.py): a media server's event, in its own format, for each server of the
    media server table (integrations/mediaservers/servers.py)."""
    json_body = _json({"type": "object", "description": "The server's webhook event as it sends it."})
    parts = {name: dict(schema) for entry in SERVERS for name, schema in entry.parts.items()}
    contents = {JSON: json_body, MULTIPART: {MULTIPART: {"schema": {"type": "object", "properties": parts}}}}
    responses = {
        "202": {"description": "Handled: queued, or why not.", "content": _json(_ref("WebhookHandled"))},
        "200": {"description": "An event that is not acted on.", "content": _json(_ref("WebhookIgnored"))},
        **_errors(400, 401, 403, 408),
        "404": {"description": "The file (after PATH_MAPPINGS) or the item does not exist.", "content": _JSON_ERROR},
        "413": {"description": "The body is larger than 1 MiB.", "content": _JSON_ERROR},
        "502": {"description": "The media server's API failed or refused the key.", "content": _JSON_ERROR},
        "503": {"description": "The event names no file and the server is not configured.", "content": _JSON_ERROR},
    }

    def operation(summary: str, content_types: Iterable[str]) -> dict[str, Any]:
        content = {kind: body for kind in content_types for kind, body in contents[kind].items()}
        return {
            "security": _SECURED,
            "tags": ["webhooks"],
            "summary": summary,
            "requestBody": {"required": True, "content": content},
            "responses": responses,
        }

    paths = {f"/webhooks/{entry.route}": {"post": operation(entry.summary, entry.content_types)} for entry in SERVERS}
    return {**paths, **_arr_paths(json_body, responses), **_subgen_paths(operation)}


def _arr_paths(json_body: dict[str, Any], responses: dict[str, Any]) -> dict[str, Any]:
    """POST or PUT /webhooks/sonarr and /webhooks/radarr (api/arr_webhooks.py): their Webhook connection."""
    found: dict[str, Any] = {}
    for app, events in (("sonarr", "EpisodeFileDelete, SeriesDelete"), ("radarr", "MovieFileDelete, MovieDelete")):
        operation = {
            "security": _SECURED,
            "tags": ["webhooks"],
            "summary": f"{app.title()} Webhook connection: Download (import, upgrade), Rename, {events}, Test",
            "requestBody": {"required": True, "content": json_body},
            "responses": {
                **{code: answer for code, answer in responses.items() if code not in ("200", "502", "503")},
                "202": {
                    "description": "Handled: the new file queued (or why not), the jobs of gone files dropped.",
                    "content": _json(_ref("WebhookHandled")),
                },
                "200": {
                    "description": "Test answered, or an event that is not acted on (Grab, Health, ...).",
                    "content": _json(
                        {"type": "object", "properties": {"test": {"type": "string"}, "ignored": {"type": "string"}}}
                    ),
                },
            },
        }
        found[f"/webhooks/{app}"] = {"post": operation, "put": operation}
    return found


def _subgen_paths(operation: Callable[[str, Iterable[str]], dict[str, Any]]) -> dict[str, Any]:
    """SubGen's URLs (api/subgen_routes.py): the same handling as /webhooks/{route}, SubGen's bodies."""
    found: dict[str, Any] = {}
    subgen = [entry for entry in SERVERS if entry.subgen is not None]
    for entry in subgen:
        summary = f"SubGen's URL for {entry.title}: as /webhooks/{entry.route}, with SubGen's body"
        if entry.subgen_body:
            summary += f" ({entry.subgen_body})"
        found[f"/{entry.route}"] = {"post": operation(summary, entry.content_types)}
    names = [entry.title for entry in subgen]
    found["/webhook"] = {
        "post": operation(
            f"SubGen's first URL: any of the {', '.join(names[:-1])} or {names[-1]} bodies, told apart by shape",
            sorted({kind for entry in subgen for kind in entry.content_types}),
        )
    }
    found["/batch"] = {
        "post": {
            "security": _SECURED,
            "tags": ["webhooks"],
            "summary": "SubGen's /batch: queue every media file under a folder (or one file) at manual priority",
            "parameters": [
                {
                    "name": "directory",
                    "in": "query",
                    "required": True,
                    "description": "A folder or file as SubGen sees it (PATH_MAPPINGS apply); several separated by |.",
                    "schema": {"type": "string", "minLength": 1},
                },
                {
                    "name": "forceLanguage",
                    "in": "query",
                    "required": False,
                    "description": "Take the audio to be in this language (a code or an English name).",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "202": {
                    "description": "One file: queued, or why not. Folders: checked in the background.",
                    "content": _json(_ref("WebhookHandled")),
                },
                **_errors(400, 401, 403),
                "404": {
                    "description": "The folder or file (after PATH_MAPPINGS) does not exist.",
                    "content": _JSON_ERROR,
                },
            },
        }
    }
    says_post = {
        "security": _SECURED,
        "tags": ["webhooks"],
        "summary": "Not a webhook: answered 405 with what to send (SubGen answered GET with a hint too)",
        "responses": {"405": {"description": "Send the event with POST.", "content": _JSON_ERROR}},
    }
    for item in found.values():
        item["get"] = says_post
    return found


_SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Language": {
        "type": "object",
        "properties": {
            "language_code": {"type": "string"},
            "detected_language": {"type": "string"},
            "confidence": {"type": "number"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "database", "workers"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "version": {"type": "string"},
            "node": {"type": "string"},
            "database": {"type": "object"},
            "workers": {"type": "object"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["version", "node", "nodes", "workers", "running", "next", "queue"],
        "properties": {
            "version": {"type": "string"},
            "node": {"type": "string", "description": "The node that answered."},
            "nodes": {
                "type": "array",
                "description": "Every node on this database (`run` and `worker` processes), with its workers.",
                "items": _ref("Node"),
            },
            "workers": {"type": "array", "items": {"type": "object"}},
            "running": {"type": "array", "items": _ref("Job")},
            "next": {"type": "array", "items": _ref("Job")},
            "queue": {"type": "object"},
        },
    },
    "Node": {
        "type": "object",
        "required": ["name", "role", "devices", "heartbeat_at", "stale", "workers"],
        "properties": {
            "name": {"type": "string", "description": "NODE_NAME."},
            "role": {
                "type": ["string", "null"],
                "description": "What it does: api, discovery, workers, comma-separated (null: workers without a node).",
            },
            "host": {"type": ["string", "null"]},
            "pid": {"type": ["integer", "null"]},
            "version": {"type": ["string", "null"]},
            "devices": {"type": "array", "items": {"type": "string"}},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "heartbeat_at": {"type": "string", "format": "date-time"},
            "heartbeat_age_seconds": {"type": "number"},
            "stale": {
                "type": "boolean",
                "description": "No heartbeat for 1.5 leases: gone; its jobs are queued again as their leases run out.",
            },
            "workers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "device", "state", "alive"],
                    "properties": {
                        "id": {"type": "string"},
                        "node": {"type": "string"},
                        "device": {"type": "string"},
                        "state": {"type": "string", "enum": ["idle", "busy", "stopping"]},
                        "job_id": {"type": ["integer", "null"]},
                        "heartbeat_at": {"type": "string", "format": "date-time"},
                        "alive": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "WebhookHandled": {
        "type": "object",
        "required": ["queued", "reason", "job_id"],
        "properties": {
            "queued": {"type": "boolean", "description": "A new job was queued."},
            "reason": {"type": "string"},
            "job_id": {"type": ["integer", "null"]},
            "job_ids": {"type": "array", "items": {"type": "integer"}},
            "path": {"type": "string", "description": "The file on this machine."},
            "reasons": {"type": "array", "items": {"type": "string"}, "description": "The library's decision."},
            "files": {"type": "integer", "description": "A show or season: files checked in the background."},
            "dropped": {
                "type": "array",
                "description": "Sonarr and Radarr: the files gone, and the ids of their jobs that were cancelled.",
                "items": {"type": "object"},
            },
            "paths": {"type": "array", "items": {"type": "string"}, "description": "/batch: the folders checked."},
        },
    },
    "WebhookIgnored": {"type": "object", "required": ["ignored"], "properties": {"ignored": {"type": "string"}}},
    "NewJob": {
        "type": "object",
        "required": ["path"],
        "properties": {
            "path": {"type": "string", "minLength": 1, "description": "Absolute path inside LIBRARY_PATHS."},
            "language": {
                "description": "Wanted subtitle language(s); 'original' = the audio's own. Default TARGET_LANGUAGES.",
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
            },
            "task": {"type": "string", "enum": ["transcribe", "translate"]},
            "priority": {"type": "integer", "minimum": -1000000, "maximum": 1000000},
        },
    },
    "Enqueued": {
        "type": "object",
        "required": ["jobs"],
        "properties": {
            "jobs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"job": _ref("Job"), "created": {"type": "boolean"}, "reason": {"type": "string"}},
                },
            }
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "state", "stage", "progress", "source", "priority"],
        "properties": {
            "id": {"type": "integer"},
            "state": {"type": "string", "enum": [s.value for s in JobState]},
            "stage": {"type": "string"},
            "progress": {"type": "number"},
            "eta_seconds": {"type": ["number", "null"]},
            "source": {"type": "string", "enum": [s.value for s in Source]},
            "priority": {"type": "integer"},
            "task": {"type": "string"},
            "media_path": {"type": ["string", "null"]},
            "upload": {"type": "boolean"},
            "source_language": {"type": ["string", "null"]},
            "target_language": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "has_result": {"type": "boolean"},
            "followups": {
                "type": "array",
                "description": "Only in GET /api/jobs/{id}: its follow-ups (refresh, Bazarr, notification).",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "kind": {"type": "string"},
                        "target": {"type": "string"},
                        "state": {"type": "string", "enum": ["pending", "done", "given_up"]},
                        "attempts": {"type": "integer"},
                        "next_attempt_at": {"type": ["string", "null"]},
                        "last_error": {"type": ["string", "null"]},
                    },
                },
            },
        },
    },
}


def document(prefix: str = "") -> dict[str, Any]:
    paths = {**_provider_paths(), **_control_paths(), **_webhook_paths(), **openai_openapi.paths()}
    if prefix:
        for path in ("/asr", "/detect-language", "/status"):
            paths[prefix + path] = paths[path]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Transcriptarr",
            "version": __version__,
            "description": "Bazarr Whisper provider (whisper-asr-webservice compatible), status and control.",
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "apikey"},
                "BearerAuth": {"type": "http", "scheme": "bearer", "description": "API_KEY (OpenAI's clients)."},
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[CONFIG].path_prefix))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
