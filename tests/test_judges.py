"""Model judges: the prompt from a rubric, log-probability scoring, both orders, parse failures, calibration."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import defaultdict

import numpy as np
import pytest
from conftest import SHARED_DATA

from harness.errors import HarnessError
from harness.judges import calibration as cal
from harness.judges.bias import length_correlation, self_preference
from harness.judges.endpoint import EndpointJudge, parse_endpoint, parse_label
from harness.judges.local import LocalJudge, expected_grade
from harness.judges.pairwise import judge_pairs, summarise
from harness.judges.prompt import JudgeItem, build_prompt, rubric_hash, template_hash
from harness.judges.verdict import Verdict
from harness.review.rubrics import load_rubric

ITEM = JudgeItem("Summarise: the cat sat on the mat.", "A cat sat.", "The cat sat on a mat.")


# the prompt ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["likert", "pass_fail", "pairwise"])
def test_prompt_carries_the_rubric(name):
    rubric = load_rubric(name)
    item = JudgeItem(ITEM.input, ITEM.output, ITEM.reference, "The mat.") if name == "pairwise" else ITEM
    text = build_prompt(rubric, item, use_reference=True)
    assert rubric.instructions.strip() in text
    for criterion in rubric.criteria:
        assert f"- {criterion.name}: {criterion.description}" in text
    for point, label in rubric.labels.items():
        assert f"{point}: {label}" in text
    assert f"Reply with exactly one of: {', '.join(rubric.choices())}." in text
    assert text.endswith("Answer:")
    assert ("Reference:\nThe cat sat on a mat." in text) == rubric.show_reference
    assert ("Output A:\nA cat sat.\n\nOutput B:\nThe mat." in text) == (name == "pairwise")


def test_reference_only_when_asked_and_a_pairwise_prompt_needs_two_outputs():
    likert = load_rubric("likert")
    assert "Reference:" not in build_prompt(likert, ITEM, use_reference=False)
    assert "Reference:" not in build_prompt(likert, JudgeItem("in", "out"), use_reference=True)
    with pytest.raises(ValueError, match="output_b"):
        build_prompt(load_rubric("pairwise"), ITEM)


def test_prompt_hash_follows_the_wording_not_the_item(tmp_path):
    likert = load_rubric("likert")
    assert template_hash(likert) == template_hash(likert)
    assert template_hash(likert, True) != template_hash(likert, False)
    reworded = likert.model_copy(update={"instructions": likert.instructions + " Be strict."})
    assert template_hash(reworded) != template_hash(likert)
    assert rubric_hash(reworded) != rubric_hash(likert)


# the local judge --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["likert", "pass_fail", "pairwise"])
def test_log_probabilities_equal_scoring_each_option_alone(causal, name):
    from harness.predict import encode_pair
    from harness.predict.choices import score_naive

    rubric = load_rubric(name)
    items = [JudgeItem(f"Input {k}: the dog ran.", "The dog ran" + " fast" * k, "A dog ran.", "It ran.")
             for k in range(3)]
    prompts = [build_prompt(rubric, i, True) for i in items]
    judge = LocalJudge(causal, batch_size=2)
    rows = judge.logprobs(prompts, rubric.choices())
    tok = causal.tokenizer
    for prompt, row in zip(prompts, rows, strict=True):
        alone = [score_naive(causal.model, [[encode_pair(tok, prompt, f" {o}")]], "cpu")[0][0]
                 for o in rubric.choices()]
        np.testing.assert_allclose(row, alone, atol=1e-4)
    for verdict, row in zip(judge.judge(prompts, rubric.choices()), rows, strict=True):
        probs = np.exp(row) / np.exp(row).sum()
        assert verdict.label == rubric.choices()[int(np.argmax(row))]
        np.testing.assert_allclose(list(verdict.probabilities.values()), probs, atol=1e-9)
        assert verdict.mass == pytest.approx(np.exp(row).sum())
        if name == "likert":
            assert expected_grade(verdict) == pytest.approx(float(probs @ np.arange(1, 6)))


# pairwise -------------------------------------------------------------------------------------------------------
class Rule:
    """A judge that answers by a rule on the prompt: the protocol a judge follows, with no model behind it."""

    ref, fingerprint = "rule", "rule"

    def __init__(self, answer):
        self.answer, self.prompts = answer, []

    def judge(self, prompts, options):
        self.prompts += list(prompts)
        return [Verdict(self.answer(p)) if self.answer(p) else Verdict(None, error="unparseable") for p in prompts]


def _outputs(prompt: str) -> tuple[str, str]:
    a = prompt.split("Output A:\n")[1].split("\n\nOutput B:")[0]
    return a, prompt.split("Output B:\n")[1].split("\n\nReply")[0]


def test_pairwise_runs_both_orders_and_counts_only_wins_that_survive_the_swap():
    rubric = load_rubric("pairwise")
    items = [JudgeItem("q", "a long answer here", output_b="short"),
             JudgeItem("q", "x", output_b="a much longer answer"), JudgeItem("q", "twin", output_b="twin")]
    longer = Rule(lambda p: (lambda a, b: "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie")(*_outputs(p)))
    results = judge_pairs(longer, rubric, items)
    assert len(longer.prompts) == 6
    assert [_outputs(p) for p in longer.prompts[3:]] == [tuple(reversed(_outputs(p))) for p in longer.prompts[:3]]
    assert [r.outcome for r in results] == ["first", "second", "tie"]
    assert summarise(results).position_consistency == 1.0
    always_a = summarise(judge_pairs(Rule(lambda p: "A"), rubric, items))
    assert (always_a.first, always_a.second, always_a.inconsistent) == (0, 0, 3)
    assert always_a.position_consistency == 0.0 and always_a.a_share == 1.0 and always_a.first_win_rate == 0.5
    failed = summarise(judge_pairs(Rule(lambda p: None if "twin" in p else "A"), rubric, items))
    assert failed.failed == 1 and failed.inconsistent == 2


def test_pairwise_refuses_a_single_output_rubric():
    with pytest.raises(ValueError, match="not pairwise"):
        judge_pairs(Rule(lambda p: "A"), load_rubric("likert"), [ITEM])


# parsing ------------------------------------------------------------------------------------------------------
LIKERT, PASS_FAIL, PAIR = list("12345"), ["pass", "fail"], ["A", "B", "tie"]


@pytest.mark.parametrize(("text", "options", "expected"), [
    ("4", LIKERT, "4"), (" 4.", LIKERT, "4"), ("1 or 2", LIKERT, "1"), ("between 2 and 3", LIKERT, None),
    ("45", LIKERT, None), ("", LIKERT, None), ("Pass", PASS_FAIL, "pass"), ("FAIL - it is wrong", PASS_FAIL, "fail"),
    ("maybe", PASS_FAIL, None), ("I choose B", PAIR, "B"), ("Tie.", PAIR, "tie"), ("A or B", PAIR, "A"),
])
def test_parse_label(text, options, expected):
    assert parse_label(text, options) == expected


@pytest.mark.parametrize("ref", ["openai:localhost:8000/v1#m", "openai:http://h:1/v1", "openai:http://h:1/v1#",
                                 "openai:ftp://h/v1#m"])
def test_a_bad_endpoint_reference_is_refused(ref):
    with pytest.raises(HarnessError, match="openai:http://HOST:PORT/v1#MODEL"):
        parse_endpoint(ref)


# bias --------------------------------------------------------------------------------------------------------
def test_length_correlation_and_self_preference():
    outputs = ["a", "a b", "a b c", "a b c d", "x"]
    follows = length_correlation([1.0, 2.0, 3.0, 4.0, None], outputs)
    assert follows["n"] == 4 and follows["spearman_rho"] == pytest.approx(1.0)
    against = length_correlation([4.0, 3.0, 2.0, 1.0, 5.0], outputs)
    assert against["spearman_rho"] < 0
    assert self_preference("fp1", {"small": "fp1", "big": "fp2"}) == ["small"]
    assert self_preference("fp3", {"small": "fp1"}) == []


# calibration --------------------------------------------------------------------------------------------------
def test_calibration_goes_stale_when_model_prompt_or_rubric_changes(tiny_dir, causal):
    import tiny_models

    from harness import models

    likert = load_rubric("likert")
    key = cal.CalibrationKey.of(causal.fingerprint, likert)
    assert key.stale_reasons(cal.CalibrationKey.of(causal.fingerprint, likert)) == []
    other = models.fingerprint(models.resolve(str(tiny_models.save_causal(tiny_dir / "judge_seed1", seed=1))))
    assert key.stale_reasons(cal.CalibrationKey.of(other, likert)) == ["the judge model changed"]
    assert key.stale_reasons(cal.CalibrationKey.of(causal.fingerprint, likert, use_reference=True)) == [
        "the judge prompt changed"]
    relabelled = likert.model_copy(update={"labels": {**likert.labels, 3: "fine"}})
    assert key.stale_reasons(cal.CalibrationKey.of(causal.fingerprint, relabelled)) == [
        "the judge prompt changed", "the rubric changed"]
    record = cal.calibrate(key, likert, {"i1": "3", "i2": "4"}, {"i1": {"r": "3"}, "i2": {"r": "4"}}, 50)
    again = cal.CalibrationRecord.from_json(record.to_json())
    assert again.to_json() == record.to_json() and again.is_stale(cal.CalibrationKey.of(other, likert))
    assert not again.is_stale(key)


def test_calibrate_consensus_confusion_and_failures():
    likert = load_rubric("likert")
    humans = {"a": {"r1": "5", "r2": "4", "r3": "5"}, "b": {"r1": "1", "r2": "2"}, "c": {"r1": "3", "r3": "3"},
              "d": {"r1": "2", "r2": "2"}, "e": {"r2": "4"}}
    judge = {"a": "5", "b": "1", "c": "3", "d": None, "e": "2", "unreviewed": "1"}
    record = cal.calibrate(cal.CalibrationKey("fp", "p", "r"), likert, judge, humans, n_resamples=50)
    assert record.failed == 1 and record.n_items == 4  # d failed; consensus of b is the lower middle, 1
    assert record.vs_consensus["raw_agreement"].value == pytest.approx(3 / 4)
    confusion = np.array(record.confusion)
    assert confusion.sum() == 4 and confusion[3, 1] == 1 and np.trace(confusion) == 3
    assert record.vs_reviewers["r1"]["raw_agreement"].value == 1.0 and record.vs_reviewers["r1"]["raw_agreement"].n == 3
    assert record.ceiling["raw_agreement"].n == 3  # items with two reviewers or more (d's judge failed)
    pass_fail = load_rubric("pass_fail")
    tied = cal.calibrate(cal.CalibrationKey("fp", "p", "r"), pass_fail, {"x": "pass", "y": "pass"},
                         {"x": {"r1": "pass", "r2": "fail"}, "y": {"r1": "pass"}}, n_resamples=20)
    assert tied.no_consensus == 1 and tied.n_items == 1


def _squality_pairs(field: str):
    path = SHARED_DATA / "squality_human_eval_ratings.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder is not checked out here)")
    by_rater = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for rating in row["ratings"]:
            by_rater[rating["rater"]][row["item_id"]] = float(rating[field])
    judge, human = sorted(by_rater, key=lambda r: -len(by_rater[r]))[:2]
    items = sorted(set(by_rater[judge]) & set(by_rater[human]))
    return np.array([by_rater[judge][i] for i in items]), np.array([by_rater[human][i] for i in items])


@pytest.mark.parametrize("field", ["overall_rank", "overall", "correctness"])
def test_agreement_equals_the_reference_implementations_on_squality(field):
    import krippendorff
    from scipy import stats as scipy_stats
    from sklearn.metrics import cohen_kappa_score

    judge, human = _squality_pairs(field)
    assert len(judge) >= 20
    got = cal.agreement_statistics(judge, human)
    expected = {
        "cohen_kappa": cohen_kappa_score(judge, human), "raw_agreement": float(np.mean(judge == human)),
        "weighted_kappa": cohen_kappa_score(judge, human, weights="quadratic"),
        "weighted_kappa_linear": cohen_kappa_score(judge, human, weights="linear"),
        "krippendorff_alpha": krippendorff.alpha(reliability_data=np.vstack([judge, human]),
                                                 level_of_measurement="ordinal"),
        "spearman": scipy_stats.spearmanr(judge, human).statistic,
        "kendall": scipy_stats.kendalltau(judge, human).statistic,
        "base_rate": np.unique(human, return_counts=True)[1].max() / len(human),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    intervals = cal.with_intervals(judge, human, n_resamples=200)
    assert intervals["cohen_kappa"].low <= got["cohen_kappa"] <= intervals["cohen_kappa"].high


# the metric -----------------------------------------------------------------------------------------------------
def test_judge_metric_grades_and_needs_inputs(causal_dir):
    from harness.metrics import get_metric

    metric = get_metric("judge", model=str(causal_dir), rubric="likert", reference=True, device="cpu")
    preds, refs = ["The cat sat.", "Dogs bark."], ["A cat sat on the mat.", "Dogs bark loudly."]
    stats = metric.example_stats(preds, refs, inputs=["Summarise the cat story.", "Summarise the dog story."])
    assert stats.shape == (2, 4) and stats[:, 2].sum() == 2
    grades = [expected_grade(v) for v in metric.last_verdicts]
    scores = metric.corpus(stats)
    assert scores["grade"] == pytest.approx(np.mean(grades)) and scores["failure_rate"] == 0.0
    assert 1.0 <= scores["top"] <= 5.0
    with pytest.raises(HarnessError, match="reads each example's input"):
        metric.example_stats(preds, refs)
    with pytest.raises(HarnessError, match="option 'model' is required"):
        get_metric("judge", rubric="likert")


def test_judge_metric_pairwise_against_the_reference(causal_dir):
    from harness.metrics import get_metric

    metric = get_metric("judge", model=str(causal_dir), rubric="pairwise", device="cpu")
    stats = metric.example_stats(["The cat sat."], ["A cat sat on the mat."], inputs=["Summarise."])
    assert len(metric.last_verdicts) == 2  # both orders
    scores = metric.corpus(stats)
    assert set(scores) == {"win_rate", "position_consistency", "failure_rate"}
    assert scores["position_consistency"] in (0.0, 1.0)


# a real OpenAI-compatible server on loopback ----------------------------------------------------------------
def _app(causal):
    """/v1/chat/completions backed by the tiny model: `tiny` answers its most likely option, `tiny-raw`
    its greedy continuation, `flaky` fails with 503 every other request, `slow` answers after 2 s."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from harness.predict import generate_plain

    local, calls = LocalJudge(causal), {"n": 0}

    async def completions(request):
        body = await request.json()
        prompt, model = body["messages"][0]["content"], body["model"]
        calls["n"] += 1
        if model == "flaky" and calls["n"] % 2:
            return JSONResponse({"error": "busy"}, status_code=503)
        if model == "slow":
            await asyncio.sleep(2.0)
        if model == "tiny-raw":
            text = generate_plain(causal.model, causal.tokenizer, [prompt], body["max_tokens"], [], "cpu")[0]
        else:
            options = prompt.rsplit("Reply with exactly one of: ", 1)[1].split(".\n")[0].split(", ")
            text = f"{local.judge([prompt], options)[0].label}."
        return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@pytest.fixture(scope="module")
def server(causal):
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    instance = uvicorn.Server(uvicorn.Config(_app(causal), log_level="error", lifespan="off"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if instance.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    instance.should_exit = True
    thread.join(timeout=5)


def test_endpoint_judge_through_a_real_server(server, causal):
    rubric = load_rubric("likert")
    prompts = [build_prompt(rubric, JudgeItem(f"Input {k}", f"Output {k}")) for k in range(4)]
    remote = EndpointJudge(f"openai:{server}#tiny", timeout=10, concurrency=2).judge(prompts, rubric.choices())
    assert [v.label for v in remote] == [v.label for v in LocalJudge(causal).judge(prompts, rubric.choices())]
    flaky = EndpointJudge(f"openai:{server}#flaky", timeout=10, retries=1, concurrency=1).judge(prompts[:2],
                                                                                                rubric.choices())
    assert all(v.ok for v in flaky)
    slow = EndpointJudge(f"openai:{server}#slow", timeout=0.3, retries=0).judge(prompts[:1], rubric.choices())
    assert not slow[0].ok and "request failed" in slow[0].error


def test_unparseable_answers_are_failures_never_grades(server, causal):
    from harness.metrics import get_metric
    from harness.predict import generate_plain

    metric = get_metric("judge", model=f"openai:{server}#tiny-raw", rubric="pass_fail", timeout=20)
    inputs, preds = [f"Question {k}?" for k in range(3)], [f"Answer {k}." for k in range(3)]
    stats = metric.example_stats(preds, preds, inputs=inputs)
    raws = [v.raw for v in metric.last_verdicts]
    prompts = [build_prompt(metric.rubric, JudgeItem(i, p, p)) for i, p in zip(inputs, preds, strict=True)]
    assert raws == generate_plain(causal.model, causal.tokenizer, prompts, 8, [], "cpu")
    parsed = [parse_label(r, ["pass", "fail"]) for r in raws]
    assert stats[:, 2].tolist() == [float(p is not None) for p in parsed]
    assert metric.corpus(stats)["failure_rate"] == pytest.approx(parsed.count(None) / 3)
    assert all((v.error is None) == (p is not None) for v, p in zip(metric.last_verdicts, parsed, strict=True))


def test_evaluation_passes_the_inputs_to_a_judge_metric(make_suite, causal_dir):
    from harness.config import MetricRef
    from harness.evaluation import compute_stats
    from harness.records import Prediction

    suite = make_suite("generation")
    suite.config.metrics = [MetricRef(name="judge", options={"model": str(causal_dir), "rubric": "pass_fail",
                                                             "device": "cpu"})]
    examples = suite.examples("test", None)
    preds = [Prediction(e.id, e.prompt, "", "Hallo Welt.", None, None, 0.0) for e in examples]
    [(metric, ms)] = compute_stats(suite, examples, preds)
    assert ms.stats.shape == (len(examples), 4) and ms.stats[:, 2].sum() == len(examples)
    direct = metric.example_stats([p.output for p in preds], [e.reference for e in examples],
                                  inputs=[e.prompt for e in examples])
    np.testing.assert_allclose(ms.stats, direct, rtol=0, atol=1e-9)
    other = metric.example_stats([p.output for p in preds], [e.reference for e in examples],
                                 inputs=["something else"] * len(examples))
    assert np.abs(other[:, 0] - direct[:, 0]).max() > 1e-7  # the input matters, so the evaluation passed the prompts
