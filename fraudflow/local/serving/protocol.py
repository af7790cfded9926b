"""SageMaker's inference payloads as `fraudflow serve` speaks them: step_code/inference.py's implementation.

The endpoint on SageMaker runs step_code/inference.py (script mode), with the stepkit.py it imports beside it; the
local server loads that same file here, so request parsing, record encoding, scoring and the answer's shape
live once. See step_code/inference.py for the accepted bodies and answers.
"""

from __future__ import annotations

import sys
from types import ModuleType

from fraudflow.plan import STEP_CODE
from fraudflow.stepcode import load_file

INFERENCE_SCRIPT = STEP_CODE / "inference.py"


def _load() -> ModuleType:
    name = "fraudflow_step_inference"
    if name not in sys.modules:
        load_file(INFERENCE_SCRIPT, name)  # with its sibling step_code/stepkit.py
    return sys.modules[name]


inference = _load()

BadRequest = inference.BadRequest
Decoded = inference.Decoded
MAX_BODY, MAX_RECORDS, CSV, JSON = inference.MAX_BODY, inference.MAX_RECORDS, inference.CSV, inference.JSON
media_type = inference.media_type
request_media = inference.request_media
choose_accept = inference.choose_accept
parse_csv = inference.parse_csv
parse_json = inference.parse_json
json_rows = inference.json_rows
json_records = inference.json_records
is_records = inference.is_records
TooLargeNumber = inference.TooLargeNumber
shown = inference.shown
clip = inference.clip
record_error = inference.record_error
raw_columns = inference.raw_columns
records_frame = inference.records_frame
encode_records = inference.encode_records
decode = inference.decode
records_to_rows = inference.records_to_rows
predict = inference.predict
score = inference.score
encode_scores = inference.encode_scores
encode_decisions = inference.encode_decisions
encode = inference.encode
