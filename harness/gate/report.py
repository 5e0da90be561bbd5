"""Writers for a gate result: Markdown (for people and $GITHUB_STEP_SUMMARY), JUnit XML (for CI test
reports) and JSON (for machines). Each is a pure function of the result: no clock, no paths, so the
same result always gives the same bytes.

JUnit: one <testcase> per check. A blocking regression (or a value below the floor) is a <failure>;
a blocking check that is not comparable is an <error>; a warn-only check that failed or is not
comparable is <skipped> with a "warning:" message; a passing check has neither.
"""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET

from harness.gate import Check, GateResult

TITLES = {"pass": "✅ Gate passed", "warn": "⚠️ Gate passed with warnings", "fail": "❌ Gate failed: regression",
          "not_comparable": "⛔ Gate error: results not comparable"}
ICONS = {"fail": "❌ fail", "not_comparable": "⛔ not comparable", "warn": "⚠️ warn", "pass": "✅ pass"}
ORDER = {"fail": 0, "not_comparable": 1, "warn": 2, "pass": 3}


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def check_dict(check: Check) -> dict:
    return _clean({"name": check.name, **dataclasses.asdict(check)})


def to_json(result: GateResult) -> str:
    data = {"verdict": result.verdict, "exit_code": result.exit_code, "counts": result.counts(),
            "baseline": result.baseline, "candidate": result.candidate, "rules_hash": result.rules_hash,
            "correction": result.correction, "resamples": result.resamples, "seed": result.seed,
            "checks": [check_dict(c) for c in result.checks]}
    return json.dumps(_clean(data), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


# Markdown -----------------------------------------------------------------------------------------------
def _num(x: float | None, fmt: str = ".4g") -> str:
    return "–" if x is None else format(x, fmt)


def _side(info: dict) -> str:
    return f"`{info['source']}` (run `{info['run_id']}`, {info['candidate']}:{info['variant']})"


def _row(c: Check) -> str:
    interval = "–" if c.low is None else f"[{c.low:+.4g}, {c.high:+.4g}]"
    cells = [ICONS[c.status] + ("" if c.blocking else " (warn-only)"), c.name, _num(c.baseline), _num(c.candidate),
             _num(c.difference, "+.4g"), interval, _num(c.max_drop, "g"), _num(c.floor, "g"), c.test,
             _num(c.p_adjusted, ".3g"), c.reason.replace("|", "\\|")]
    return "| " + " | ".join(cells) + " |"


def to_markdown(result: GateResult) -> str:
    n = result.counts()
    lines = [
        f"## {TITLES[result.verdict]}", "",
        f"Candidate {_side(result.candidate)} against baseline {_side(result.baseline)}: "
        f"{n['failed']} failed, {n['not_comparable']} not comparable, {n['warned']} warnings, "
        f"{n['passed']} passed of {n['checks']} checks.", "",
        "| result | check | baseline | candidate | Δ | interval | max drop | floor | test | p (adj.) | why |",
        "|---|---|---:|---:|---:|---|---:|---:|---|---:|---|",
    ]
    lines += [_row(c) for c in sorted(result.checks, key=lambda c: ORDER[c.status])]
    lines += ["", f"Rules `{result.rules_hash}` · correction {result.correction} · {result.resamples} resamples · "
              f"seed {result.seed}. Δ = candidate − baseline; interval: paired bootstrap, two-sided 1 − 2α "
              "(its upper end is the one-sided bound); p: one-sided test that the candidate is worse by more "
              "than the max drop, after correction.", ""]
    return "\n".join(lines)


# JUnit --------------------------------------------------------------------------------------------------
def _outcome(c: Check) -> tuple[str, str, str] | None:
    """(element, type, message) for a check that did not plainly pass."""
    if c.status == "fail":
        kind = "regression" if c.regressed else "below_floor"
        return "failure", kind, c.reason
    if c.status == "not_comparable" and c.blocking:
        return "error", "not_comparable", c.reason
    if c.status in ("warn", "not_comparable"):
        return "skipped", "warning", f"warning: {c.reason}"
    return None


def to_junit(result: GateResult) -> str:
    outcomes = [_outcome(c) for c in result.checks]
    counts = {kind: sum(1 for o in outcomes if o and o[0] == kind) for kind in ("failure", "error", "skipped")}
    attrs = {"tests": str(len(result.checks)), "failures": str(counts["failure"]), "errors": str(counts["error"]),
             "skipped": str(counts["skipped"]), "time": "0"}
    root = ET.Element("testsuites", {"name": "harness gate", **attrs})
    suite = ET.SubElement(root, "testsuite", {
        "name": f"gate {result.candidate['source']} vs {result.baseline['source']}", **attrs})
    props = ET.SubElement(suite, "properties")
    for name, value in (("verdict", result.verdict), ("rules_hash", result.rules_hash),
                        ("baseline", result.baseline["source"]), ("candidate", result.candidate["source"])):
        ET.SubElement(props, "property", {"name": name, "value": str(value)})
    for check, outcome in zip(result.checks, outcomes, strict=True):
        case = ET.SubElement(suite, "testcase", {"classname": f"gate.{check.suite}",
                                                 "name": check.name.split(" / ", 1)[1], "time": "0"})
        if outcome:
            element, kind, message = outcome
            ET.SubElement(case, element, {"type": kind, "message": message}).text = message
        ET.SubElement(case, "system-out").text = (
            f"baseline {_num(check.baseline)} candidate {_num(check.candidate)} difference "
            f"{_num(check.difference, '+.4g')} test {check.test} p(adj) {_num(check.p_adjusted, '.3g')} "
            f"n {check.n}: {check.reason}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
