"""POST /asr?task=translate with a model that cannot translate: a 4xx that says why, over real loopback HTTP.

The service runs the bundled tiny.en model, an English-only model. No job is queued for such a request
(workers are off here: a queued job would never finish, so a wrong answer shows as a hang, not a pass).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acceptance.engine_harness import engine_settings
from tests.api.conftest import bazarr_jobs, spool_files
from tests.api.live import LiveService, bazarr_post
from transcriptarr.api.bazarr import parse_asr, translation_refusal_for

TRANSLATE = {"task": "translate", "language": "de", "output": "srt", "encode": "false"}
REASON = (
    "ERROR: task=translate refused: the model 'bundled:tiny.en' is an English-only model and cannot translate; "
    "set WHISPER_MODEL to a multilingual model such as small, medium or large-v3; or ask for task=transcribe"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("refusal")
    settings = engine_settings(tmp, transcriptarr_mode="provider")
    with LiveService(settings, workers=False, path_prefix="/whisper") as live:
        yield live


def test_translate_with_an_english_only_model_is_refused_with_the_reason(service: LiveService, jfk_pcm: bytes) -> None:
    for base in (service.url, f"{service.url}/whisper"):
        response = bazarr_post(base, "asr", jfk_pcm, TRANSLATE, read_timeout=30)
        assert response.status_code == 422
        assert response.text.strip() == REASON
    assert bazarr_jobs(service) == []
    assert spool_files(service) == []


def test_a_large_upload_still_gets_the_answer_not_a_dropped_connection(service: LiveService) -> None:
    # Answered before the body is read: the client must still be able to send it all and read the reply
    # (a dropped connection makes Bazarr throttle the provider for 24 hours).
    audio = b"\x01\x00" * (4 * 1024 * 1024)
    response = bazarr_post(service.url, "asr", audio, {**TRANSLATE, "language": "ja"}, read_timeout=30)
    assert response.status_code == 422 and response.text.startswith("ERROR: task=translate refused")


def test_which_requests_are_refused() -> None:
    def refusal(model: str, **query: str) -> str | None:
        return translation_refusal_for(parse_asr({"output": "srt", **query}), model)

    assert refusal("turbo", task="translate", language="fr") is not None
    assert refusal("distil-large-v3", task="translate") is not None  # language unknown: may need translating
    assert refusal("small", task="translate", language="fr") is None
    assert refusal("tiny.en", task="translate", language="en") is None  # English audio: a transcription
    assert refusal("tiny.en", task="transcribe", language="fr") is None
