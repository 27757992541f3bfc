"""The OpenAPI 3.1 document of every route, written by hand (a test checks it covers the router)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from transcriptarr import __version__
from transcriptarr.api.keys import CONFIG
from transcriptarr.api.output import OUTPUTS
from transcriptarr.db.models import JobState, Source

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
                "tags": ["status"],
                "summary": "Status page (HTML)",
                "responses": {
                    "200": {"description": "HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/health": {
            "get": {
                "tags": ["status"],
                "summary": "Liveness, database and worker state",
                "responses": {
                    "200": {"description": "Healthy.", "content": _json(_ref("Health"))},
                    "503": {"description": "Degraded: the database does not answer.", "content": _json(_ref("Health"))},
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
                "summary": "Mode, version, model, workers, queue counts and ETA",
                "responses": {"200": {"description": "Status.", "content": _json({"type": "object"})}, **_errors(401)},
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
        },
    },
}


def document(prefix: str = "") -> dict[str, Any]:
    paths = {**_provider_paths(), **_control_paths()}
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
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[CONFIG].path_prefix))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json)
