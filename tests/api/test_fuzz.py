"""Schemathesis fuzzing of every operation in /openapi.json against a live server on loopback.

Bounded (a few examples per operation). Any 5xx that the document does not
list, an undocumented status or a response that breaks its schema fails.
The server has no workers, so provider uploads wait their (short) maximum
and answer 504, which is documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from transcriptarr.api.openapi import document

# schemathesis gives every API operation's test the same node id, and pytest-xdist runs one item per node id:
# run alone, in order (`make test` runs `serial` tests after the rest), so that every operation is fuzzed.
pytestmark = pytest.mark.serial

KEY = "fuzz-key"
schema = schemathesis.openapi.from_dict(document()).exclude(path="/api/events")  # an endless stream


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("fuzz")
    library = tmp / "library"
    library.mkdir()
    (library / "film.mkv").write_bytes(b"media")
    config = engine_settings(tmp, transcriptarr_mode="standalone,provider", api_key=KEY, library_paths=str(library))
    with LiveService(config, workers=False, max_wait_seconds=0.5, keepalive_seconds=0.2) as service:
        yield service


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case[Any], live: LiveService) -> None:
    case.call_and_validate(
        base_url=live.url,
        headers={"X-Api-Key": KEY},
        timeout=30,
        excluded_checks=[
            # A 5xx passes only where the document lists it (e.g. 504 after MAX_JOB_MINUTES):
            # status_code_conformance fails any status the operation does not document.
            not_a_server_error,
            # Rules a schema cannot state (PCM needs an even byte count, a path must lie in a
            # library) and whisper-asr-webservice's lenient booleans (encode=0) would count as
            # "valid request rejected" / "invalid request accepted".
            positive_data_acceptance,
            negative_data_rejection,
        ],
    )
