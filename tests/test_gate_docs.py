"""The documented CI setup stays in step with the code: the example workflow's `harness` commands parse,
and the experiment and rules shown in docs/github-actions.md and docs/gate.md validate."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer
import yaml

from harness.cli import _register, app
from harness.config import load_experiment
from harness.gate.rules import effective_rules, load_rules

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gate-example.yml"


def yaml_blocks(doc: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)


def test_workflow_commands_parse():
    _register()
    command = typer.main.get_command(app)
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    env = {k: f"/ci/{k.lower()}" for k in workflow["jobs"]["gate"]["env"]}
    lines = [line.strip() for step in steps for line in step.get("run", "").splitlines()]
    harness_lines = [line for line in lines if line.startswith("harness ")]
    assert {line.split()[1] for line in harness_lines} == {"run", "gate"}
    for line in harness_lines:
        args = shlex.split(re.sub(r"\$(\w+)", lambda m: env[m.group(1)], line))[1:]
        sub = command.commands[args[0]]
        sub.make_context(args[0], args[1:])  # raises on an unknown or missing option


def test_documented_experiment_and_rules_validate(tmp_path):
    blocks = yaml_blocks(ROOT / "docs" / "github-actions.md")
    experiment = next(b for b in blocks if "candidates:" in b)
    (tmp_path / "experiment.yaml").write_text(experiment)
    assert load_experiment(tmp_path / "experiment.yaml").suites == ["sentiment"]
    rule_blocks = [b for b in blocks + yaml_blocks(ROOT / "docs" / "gate.md") if b.lstrip().startswith(
        ("rules:", "correction:"))]
    assert len(rule_blocks) == 2
    for i, block in enumerate(rule_blocks):
        path = tmp_path / f"gates{i}.yaml"
        path.write_text(block)
        assert effective_rules(load_rules(path))
