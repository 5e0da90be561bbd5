"""Model judges: a model grades outputs on the reviewers' own rubric, and is checked against them.

`prompt` builds the judge prompt from a rubric YAML; `local` scores the rubric's options by
log-probability with a model the harness loads; `endpoint` asks an OpenAI-compatible server for one
label; `pairwise` runs both orders; `bias` checks length and self-preference; `calibration` measures
agreement with the human reviewers and keys it to the judge, prompt and rubric; `metric` is the
`judge` metric of generation suites; `queue_calibration` calibrates a judge on a graded review queue and
stores the record, `stored` reads records back. See docs/judges.md.
"""

from __future__ import annotations

import importlib

_FACES = {
    "JudgeItem": "harness.judges.prompt",
    "build_prompt": "harness.judges.prompt",
    "Verdict": "harness.judges.verdict",
    "LocalJudge": "harness.judges.local",
    "EndpointJudge": "harness.judges.endpoint",
    "load_judge": "harness.judges.loading",
    "judge_pairs": "harness.judges.pairwise",
    "calibrate": "harness.judges.calibration",
    "CalibrationKey": "harness.judges.calibration",
    "CalibrationRecord": "harness.judges.calibration",
    "calibrate_queue": "harness.judges.queue_calibration",
    "latest_calibration": "harness.judges.stored",
}
__all__ = sorted(_FACES)


def __getattr__(name: str):
    if name in _FACES:
        return getattr(importlib.import_module(_FACES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
