"""The OpenAPI description of the OpenAI-compatible routes (api/openai_api.py), merged into /openapi.json."""

from __future__ import annotations

from typing import Any

from transcriptarr.api.openai_render import FORMATS, GRANULARITIES

_SECURED: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {"BearerAuth": []}]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "enum": ["invalid_request_error", "server_error"]},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_ERROR = {"application/json": {"schema": ERROR_SCHEMA}}
_REASONS = {
    400: "Bad request: a field, the file (not audio ffmpeg can read) or a translation the model cannot do.",
    401: "Missing or wrong API key (when API_KEY is set): send it as `Authorization: Bearer <key>`.",
    403: "The client is outside PROVIDER_ALLOWED_NETWORKS.",
    404: "Provider mode is off, or no such model.",
    408: "The upload stalled.",
    409: "The job was cancelled (`x-should-retry: false`).",
    413: "The upload is larger than MAX_UPLOAD_MB.",
    422: "The transcription failed because of the audio (`x-should-retry: false`).",
    500: "The transcription failed for a reason of ours (`x-should-retry: false`).",
    503: "Not available now (shutting down, the spool or ffmpeg failing, database down); try again.",
    504: "No result within MAX_JOB_MINUTES; the job goes on, ask again.",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": _REASONS[code], "content": _ERROR} for code in codes}


def _form(*, language: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "Audio or video in any container ffmpeg reads."},
        "model": {
            "type": "string",
            "description": "Any name (whisper-1 by default); the audio is always transcribed with WHISPER_MODEL.",
        },
        "prompt": {"type": "string", "description": "Initial prompt: style, names, the previous sentence."},
        "response_format": {"type": "string", "enum": list(FORMATS)},
        "temperature": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "Checked only: the QUALITY preset decides the decoding.",
        },
        "timestamp_granularities[]": {
            "type": "array",
            "items": {"type": "string", "enum": list(GRANULARITIES)},
            "description": "verbose_json only: word adds `words`; segments unless only word is asked for.",
        },
    }
    if language:
        properties["language"] = {"type": "string", "description": "ISO-639-1 code of the audio; else detected."}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": properties}}
        },
    }


_TRANSCRIPT = {
    "description": "The transcript in `response_format`: json, verbose_json, or text (text, srt, vtt).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string"},
                    "task": {"type": "string"},
                    "language": {"type": "string"},
                    "duration": {"type": "number"},
                    "segments": {"type": "array", "items": {"type": "object"}},
                    "words": {"type": "array", "items": {"type": "object"}},
                    "usage": {"type": "object"},
                },
            }
        },
        "text/plain": {"schema": {"type": "string"}},
        "text/vtt": {"schema": {"type": "string"}},
    },
}
_MODEL = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["model"]},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}


def paths() -> dict[str, Any]:
    audio_errors = _errors(400, 401, 403, 404, 408, 409, 413, 422, 500, 503, 504)
    return {
        "/v1/audio/transcriptions": {
            "post": {
                "security": _SECURED,
                "tags": ["openai"],
                "summary": "Transcribe audio (OpenAI's audio API)",
                "description": "Same queue and deduplication as /asr; interim `100 Continue` while the job runs.",
                "requestBody": _form(language=True),
                "responses": {"200": _TRANSCRIPT, **audio_errors},
            }
        },
        "/v1/audio/translations": {
            "post": {
                "security": _SECURED,
                "tags": ["openai"],
                "summary": "Translate audio into English (OpenAI's audio API)",
                "description": "400 when WHISPER_MODEL cannot translate (English-only, turbo, distil models).",
                "requestBody": _form(language=True),
                "responses": {"200": _TRANSCRIPT, **audio_errors},
            }
        },
        "/v1/models": {
            "get": {
                "security": _SECURED,
                "tags": ["openai"],
                "summary": "whisper-1 (an alias) and WHISPER_MODEL",
                "responses": {
                    "200": {
                        "description": "The models.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["object", "data"],
                                    "properties": {
                                        "object": {"type": "string"},
                                        "data": {"type": "array", "items": _MODEL},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(401, 403, 404, 503),
                },
            }
        },
        "/v1/models/{model}": {
            "get": {
                "security": _SECURED,
                "tags": ["openai"],
                "summary": "One model",
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The model.", "content": {"application/json": {"schema": _MODEL}}},
                    **_errors(401, 403, 404, 503),
                },
            }
        },
    }
