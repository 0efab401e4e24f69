"""The ptm-triage command as a newcomer uses it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.cli import main
from tests import secret_watch
from tests.conftest import SHARED, WEBHOOK_EXAMPLES
from tests.servers import free_port
from tests.waiting import HTTP_TIMEOUT_S, PATIENCE_S, wait_until

CLI = [sys.executable, "-m", "app.cli"]


def answers(url: str, server: subprocess.Popen[bytes]) -> bool:
    """The service at ``url`` answers 200; a service that exited fails the test at once."""
    if server.poll() is not None:
        raise AssertionError(f"the service exited with {server.returncode}")
    try:
        return httpx.get(url, timeout=HTTP_TIMEOUT_S).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_without_credentials_is_dry_run_and_receive_signs_with_the_local_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PTM_TRIAGE_", "DATABASE_URL"))}
    env.update(PTM_TRIAGE_DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1")
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/healthz", server), "the service answered /healthz")
        assert httpx.get(f"{url}/healthz", timeout=HTTP_TIMEOUT_S).json()["dry_run"] is True
        secret_watch.register((tmp_path / "data" / "webhook-secret").read_text().strip())
        output = Path(log.name).read_text()
        assert "DRY-RUN" in output and str((tmp_path / "data" / "webhook-secret").resolve()) in output

        payload = WEBHOOK_EXAMPLES / "issues" / "opened.payload.json"
        sent = subprocess.run([*CLI, "receive", "-e", "issues", "-p", str(payload), "--url", f"{url}/webhook"],
                              env=env, capture_output=True, text=True, timeout=PATIENCE_S)
        assert sent.returncode == 0 and sent.stdout.startswith("202"), sent.stdout + sent.stderr
        def triaged() -> list[dict]:
            issues = httpx.get(f"{url}/api/issues", timeout=HTTP_TIMEOUT_S).json()["issues"]
            return [issue for issue in issues if issue["prediction"] is not None]

        (issue,) = wait_until(triaged, "the delivery's issue stored with its prediction")
        assert issue["repo"] == "Codertocat/Hello-World"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=PATIENCE_S)
        secret_watch.check_file(tmp_path / "serve.log")


def test_classify_writes_the_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(x) for x in [
        {"id": "a", "title": "CUDA out of memory loading SDXL", "body": "torch.cuda.OutOfMemoryError"},
        {"id": "b", "title": "Dark mode CSS broken on settings page", "body": None},
        {"id": 3, "title": "hello"},
        {"id": "zh", "title": "加载模型后显存不足", "body": "运行 SDXL 时出现 CUDA out of memory，怎么办？"},
    ]) + "\n")
    assert main(["classify", "--input", str(source), "--output", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", 3, "zh"]
    assert set(rows[0]) == {"id", "ptm", "ptm_score", "themes", "theme_scores", "subthemes", "subtheme_scores",
                            "type", "type_scores", "model", "abstain_reason"}
    assert rows[0]["ptm"] is True and "HR" in rows[0]["themes"] and rows[1]["ptm"] is False
    assert [r["abstain_reason"] for r in rows] == [None, None, None, "language not supported"]
    assert rows[3]["ptm"] is False and rows[3]["themes"] == []


def test_classify_names_a_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "title": "ok"}\n{oops\n')
    assert main(["classify", "--input", str(source), "--output", str(tmp_path / "out.jsonl")]) == 1
    assert ":2:" in capsys.readouterr().err


def test_train_then_evaluate_a_tiny_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [json.loads(line) for line in (SHARED / "data" / "train.jsonl").read_text().splitlines()[:120]]
    data = tmp_path / "tiny.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "model"
    assert main(["train", "--kind", "baseline", "--data", str(data), "--dev", str(data), "--output", str(out)]) == 0
    assert (out / "MODEL_CARD.md").is_file()
    capsys.readouterr()
    assert main(["evaluate", "--data", str(data), "--model", "baseline", "--model-dir", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 120 and 0 <= result["ptm"]["f1"] <= 1 and set(result["themes"]) >= {"micro_f1", "macro_f1"}


def test_a_wrong_setting_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_APP_ID", "not-a-number")
    assert main(["serve"]) == 2
    assert "GITHUB_APP_ID" in capsys.readouterr().err


def test_evaluate_compares_models_on_the_same_issues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = (SHARED / "data" / "dev.jsonl").read_text().splitlines()[:40]
    data = tmp_path / "dev40.jsonl"
    data.write_text("\n".join(rows) + "\n")
    assert main(["evaluate", "--data", str(data), "--model", "bert", "--model", "baseline", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert [m["model"].split("@")[0] for m in models] == ["bert-minilm", "baseline-tfidf-lr"]
    assert all(m["n"] == 40 for m in models)
    assert main(["evaluate", "--data", str(data), "--model", "bert", "--model", "baseline"]) == 0
    table = capsys.readouterr().out.split("\n\n")[-1]
    assert "theme macro-F1" in table and "bert-minilm@" in table
