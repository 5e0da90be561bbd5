"""Judges: throughput of a local judge and of the same judge behind a loopback OpenAI-compatible endpoint,
and the cost of judging pairs in both orders (the position swap).

SmolLM2-135M-Instruct grades SAMSum reference summaries on the built-in likert rubric (the reference
summary as the output, the dialogue as the input). Local: options scored by log-probability, batch 8.
Endpoint: a starlette/uvicorn server on 127.0.0.1 answers each chat completion with the same local
judge's most likely option; EndpointJudge sends 4 requests at a time. Both sides must give the same
label for every item. Swap: `judge_pairs` (both orders) against judging the forward order only.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from bench import Row, alternate, child_main, median, offline, paired_ratio, shared_data

MODEL = "pack:smollm2-135m-instruct"


def items(n: int):
    from harness.judges.prompt import JudgeItem

    rows = [json.loads(line) for line in shared_data("samsum_test.jsonl").read_text("utf-8").splitlines()[:n + 1]]
    return [JudgeItem(r["document"][:600], r["summary"]) for r in rows[:n]], rows[n]["summary"]


def serve(local):
    """A loopback /v1/chat/completions that answers with the local judge's most likely option; returns URL, stop."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()

    async def completions(request):
        prompt = (await request.json())["messages"][0]["content"]
        options = prompt.rsplit("Reply with exactly one of: ", 1)[1].split(".\n")[0].split(", ")
        with lock:  # one model, one forward pass at a time
            label = local.judge([prompt], options)[0].label
        return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": label}}]})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/chat/completions", completions,
                                                                     methods=["POST"])]),
                                           log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1", stop


def run(quick: bool) -> list[Row]:
    offline()
    from harness import models
    from harness.judges.endpoint import EndpointJudge
    from harness.judges.local import LocalJudge
    from harness.judges.pairwise import judge_pairs
    from harness.judges.prompt import JudgeItem, build_prompt
    from harness.review.rubrics import load_rubric

    n, reps = (8, 2) if quick else (32, 3)
    local = LocalJudge(models.load(MODEL, kind="causal", device="cpu"), batch_size=8)
    likert, pairwise = load_rubric("likert"), load_rubric("pairwise")
    judged, other = items(n)
    prompts = [build_prompt(likert, i) for i in judged]
    url, stop = serve(local)
    try:
        remote = EndpointJudge(f"openai:{url}#smollm2", timeout=120, concurrency=4)
        times, out = alternate({"local": lambda: local.judge(prompts, likert.choices()),
                                "endpoint": lambda: remote.judge(prompts, likert.choices())}, reps)
    finally:
        stop()
    same = [v.label for v in out["local"]] == [v.label for v in out["endpoint"]]
    pairs = [JudgeItem(i.input, i.output, None, other) for i in judged]
    forward = [build_prompt(pairwise, p) for p in pairs]
    swap_times, swap_out = alternate({"both orders": lambda: judge_pairs(local, pairwise, pairs),
                                      "one order": lambda: local.judge(forward, pairwise.choices())}, reps)
    consistent = sum(r.outcome != "inconsistent" for r in swap_out["both orders"]) / n
    rate = {k: n / median(v) for k, v in times.items()}
    return [
        Row("judges", f"likert, {n} SAMSum summaries: local vs loopback endpoint", f"{rate['local']:.2f} items/s",
            f"{rate['endpoint']:.2f} items/s (endpoint)", paired_ratio(times["endpoint"], times["local"]), "-",
            None, f"same label on every item: {same}",
            note="ratio: endpoint time / local time (the HTTP and one-at-a-time cost)", raw={"times": times}),
        Row("judges", f"pairwise, {n} pairs: both orders vs one order", f"{n / median(swap_times['both orders']):.2f}"
            " pairs/s", f"{n / median(swap_times['one order']):.2f} pairs/s (one order)",
            paired_ratio(swap_times["both orders"], swap_times["one order"]), "-", None,
            f"position consistency {consistent:.2f}", note="ratio: the swap's cost (both-orders time / one order)",
            raw={"times": swap_times}),
    ]


if __name__ == "__main__":
    child_main(run, __doc__)
