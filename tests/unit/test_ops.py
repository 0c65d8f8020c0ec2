"""ops/: the Prometheus rules, their unit tests and the Grafana dashboards, checked offline.

promtool (Debian's, fetched by scripts/promtool.sh) checks and unit-tests the rules; every
expression of every rule and panel is parsed (promql-parser, and Prometheus' own parser through
promtool) and every metric it names must be one the code exports, with labels it has.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
OPS = ROOT / "ops"
RULE_FILES = sorted((OPS / "prometheus" / "rules").glob("*.yml"))
TEST_FILES = sorted((OPS / "prometheus" / "tests").glob("*.test.yml"))
DASHBOARD_FILES = sorted((OPS / "grafana" / "dashboards").glob("*.json"))
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes itself.
PROMETHEUS_SERIES = {"up": set[str](), "ALERTS": {"alertname", "alertstate", "severity"}}
# Grafana's variables, replaced by what Grafana would send, for parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def promtool() -> str:
    found = subprocess.run(
        [str(ROOT / "scripts" / "promtool.sh"), "--path"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def _run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def rules() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for group in _yaml(path)["groups"] for rule in group["rules"]
    ]


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel query."""
    found = []
    for path in DASHBOARD_FILES:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", ()):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def for_prometheus(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr!r}"
    return expr


def exported_metrics() -> dict[str, set[str]]:
    """Every series name the code exposes on /metrics, with the labels it can carry."""
    from prometheus_client.metrics import MetricWrapperBase

    from jobs.dead_letters import DeadLetterCollector
    from server import metrics

    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = set(value._labelnames) | TARGET_LABELS
        if value._type == "counter":
            names[f"{value._name}_total"] = labels
        elif value._type == "histogram":
            names[f"{value._name}_bucket"] = labels | {"le"}
            names[f"{value._name}_sum"] = labels
            names[f"{value._name}_count"] = labels
        elif value._type == "gauge":
            per_process = getattr(value, "_multiprocess_mode", "") in ("all", "liveall")
            names[value._name] = labels | ({"pid"} if per_process else set())
        else:
            raise AssertionError(f"a {value._type} metric: teach this test its series names")
    for family in DeadLetterCollector(None).describe():  # type: ignore[arg-type]
        names[family.name] = set(family._labelnames) | TARGET_LABELS
    return names


def selectors(expr: str) -> list[tuple[str | None, set[str]]]:
    """(metric name, label names matched) of every series selector in a PromQL expression."""
    found: list[tuple[str | None, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, {m.name for m in node.matchers.matchers}))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_the_code_exports_what_this_test_reads() -> None:
    names = exported_metrics()
    # one of each kind, so that a change in how names are read cannot empty the set unnoticed
    assert names["grpc_server_handled_total"] >= {"grpc_service", "grpc_method", "grpc_code"}
    assert "le" in names["grpc_server_handling_seconds_bucket"]
    assert "pid" in names["process_rss_bytes"]
    assert names["jobs_dead_letter_queue_size"] >= {"queue"}
    assert len(names) > 40


def test_rules_and_config_pass_promtool(promtool: str) -> None:
    checked = _run(promtool, "check", "rules", *RULE_FILES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = _run(promtool, "check", "config", OPS / "prometheus" / "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert f"{len(RULE_FILES)} rule files found" in config.stdout


def test_alert_unit_tests_pass(promtool: str) -> None:
    tested = _run(promtool, "test", "rules", *TEST_FILES)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_alert_has_a_test_where_it_fires_and_where_it_stays_quiet() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        suite = _yaml(path)
        assert suite["rule_files"] == ["../rules/recording.yml", "../rules/alerts.yml"], path
        for case in suite["tests"]:
            for check in case.get("alert_rule_test", ()):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    defined = set(alerts())
    assert fires >= defined, f"alerts never shown firing: {sorted(defined - fires)}"
    assert quiet >= defined, f"alerts never shown quiet: {sorted(defined - quiet)}"
    assert fires <= defined, f"tests of alerts that do not exist: {sorted(fires - defined)}"


def test_every_alert_says_how_bad_and_where_to_read_more() -> None:
    readme = (OPS / "README.md").read_text().lower()
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
        anchor = rule["annotations"]["runbook_url"]
        assert anchor == f"ops/README.md#{name.lower()}", name
        assert f"### {name.lower()}" in readme, f"ops/README.md has no section for {name}"


def test_every_expression_names_only_exported_metrics_and_their_labels() -> None:
    known = exported_metrics()
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    expressions = [(f"rule {r.get('record') or r.get('alert')}", r["expr"]) for r in rules()]
    expressions += [
        (f"{file} panel {title!r}", for_prometheus(expr))
        for file, title, expr in dashboard_targets()
    ]
    assert len(expressions) > 80
    problems = []
    for where, expr in expressions:
        try:
            found = selectors(expr)
        except ValueError as exc:
            problems.append(f"{where}: does not parse: {exc}")
            continue
        assert found, f"{where}: selects no series"
        for name, labels in found:
            if name is None:
                problems.append(f"{where}: a selector without a metric name")
            elif name in recorded:
                continue
            elif name in known:
                unknown = labels - known[name]
                if unknown:
                    problems.append(f"{where}: {name} has no label(s) {sorted(unknown)}")
            elif name in PROMETHEUS_SERIES:
                unknown = labels - PROMETHEUS_SERIES[name] - TARGET_LABELS
                if unknown:
                    problems.append(f"{where}: {name} has no label(s) {sorted(unknown)}")
            else:
                problems.append(f"{where}: no metric {name} in the code")
    assert not problems, "\n".join(problems)


def test_recording_rule_names_are_used_by_something() -> None:
    """A recorded series nobody reads is cost without use."""
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used: set[str] = set()
    for _, expr in [(None, r["expr"]) for r in rules()] + [
        (None, for_prometheus(e)) for _, _, e in dashboard_targets()
    ]:
        used |= {name for name, _ in selectors(expr) if name}
    assert recorded <= used, f"recorded but never read: {sorted(recorded - used)}"


def test_dashboard_expressions_parse_in_prometheus(promtool: str, tmp_path: Path) -> None:
    """Prometheus' own parser (promtool) reads every panel query, as if it were a rule."""
    rules_file = tmp_path / "dashboards.yml"
    group = {
        "name": "dashboard-expressions",
        "rules": [
            {"record": f"dashboard:check_{i}", "expr": for_prometheus(expr)}
            for i, (_, _, expr) in enumerate(dashboard_targets())
        ],
    }
    rules_file.write_text(yaml.safe_dump({"groups": [group]}))
    checked = _run(promtool, "check", "rules", rules_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_broken_expression_is_caught(promtool: str, tmp_path: Path) -> None:
    """The checks above can fail: promtool and the parser refuse a typo, and a made-up
    metric is not among the exported ones."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "x", "expr": "sum("}]}]})
    )
    assert _run(promtool, "check", "rules", bad).returncode != 0
    with pytest.raises(ValueError, match="parenthesis"):
        selectors("sum(rate(grpc_server_handled_total[5m])")
    assert "grpc_server_handled" not in exported_metrics()  # the counter is only ..._total


def test_dashboards_are_what_the_generator_writes() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gen_dashboards", ROOT / "scripts/gen_dashboards.py"
    )
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generator  # dataclasses look their module up there
    try:
        spec.loader.exec_module(generator)
    finally:
        del sys.modules[spec.name]
    expected = generator.render()
    assert sorted(expected) == [path.name for path in DASHBOARD_FILES]
    for path in DASHBOARD_FILES:
        assert path.read_text() == expected[path.name], (
            f"{path} is stale: run `python scripts/gen_dashboards.py`"
        )
    assert {"api.json", "database.json", "jobs.json", "feed.json"} <= set(expected)


def test_dashboards_are_well_formed_for_grafana() -> None:
    datasource = _yaml(OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    uids = set()
    for path in DASHBOARD_FILES:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0, (path.name, panel["title"])
            assert pos["x"] + pos["w"] <= 24, (path.name, panel["title"])
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not area & cells, f"{path.name}: {panel['title']!r} overlaps another panel"
            cells |= area
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
    assert len(uids) == len(DASHBOARD_FILES)


def test_compose_observability_profile_provisions_these_files() -> None:
    compose = _yaml(ROOT / "docker-compose.yml")
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"], name

    def mounts(service: str) -> dict[str, str]:
        pairs = (volume.split(":")[:2] for volume in services[service]["volumes"])
        return {target: source for source, target in pairs if source.startswith("./")}

    prometheus = mounts("prometheus")
    config_arg = next(
        a for a in services["prometheus"]["command"] if a.startswith("--config.file=")
    )
    config_path = config_arg.split("=", 1)[1]
    folder, _, config_name = config_path.rpartition("/")
    assert (ROOT / prometheus[folder] / config_name).is_file()
    config = _yaml(ROOT / prometheus[folder] / config_name)
    for pattern in config["rule_files"]:
        assert sorted((ROOT / prometheus[folder]).glob(pattern)) == RULE_FILES
    targets = {
        t.split(":")[0]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for t in static["targets"]
    }
    assert targets <= set(services), "a scrape target that is not a compose service"
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert all(re.fullmatch("hustle-.+", job) for job in jobs)  # what HustleTargetDown watches

    grafana = mounts("grafana")
    assert (ROOT / grafana["/etc/grafana/provisioning"] / "dashboards").is_dir()
    provider = _yaml(OPS / "grafana" / "provisioning" / "dashboards" / "hustle.yml")
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert (ROOT / grafana[dashboards_path]).resolve() == (OPS / "grafana" / "dashboards")
    datasource = _yaml(OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    url = datasource["datasources"][0]["url"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", url).groups()  # type: ignore[union-attr]
    assert host in services
    assert f"{port}:{port}" in services[host]["ports"]
