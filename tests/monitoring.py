"""The monitoring component's files (deploy/components/monitoring) as the tests read them, and
the PrometheusRule made from the plain rule file: `python -m tests.monitoring` (`make
prometheusrule`) writes it after an edit of the rules; tests/test_monitoring.py fails while the
two differ."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMPONENT = REPO / "deploy" / "components" / "monitoring"
RULES = COMPONENT / "tenant-guard.rules.yaml"
PROMETHEUS_RULE = COMPONENT / "prometheusrule.yaml"
DASHBOARD = COMPONENT / "tenant-guard-dashboard.json"
RULE_TESTS = REPO / "tests" / "fixtures" / "monitoring" / "tenant-guard.rules.test.yaml"

_HEADER = """\
# GENERATED from tenant-guard.rules.yaml by `make prometheusrule`: edit that file, not this one.
# The same groups for prometheus-operator. Its Prometheus picks up PrometheusRules whose labels
# match its ruleSelector (kube-prometheus-stack: release=<its Helm release>); add that label
# with a patch in your overlay if yours needs one.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: tenant-guard
  namespace: tenant-guard
  labels:
    app.kubernetes.io/name: tenant-guard
    app.kubernetes.io/component: monitoring
spec:
"""


def prometheus_rule_text() -> str:
    """The PrometheusRule: the rule file's groups, comments and all, under `spec:`."""
    lines = RULES.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = "".join(f"  {line}" if line.strip() else line for line in lines[start:])
    return _HEADER + body


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def main() -> int:
    PROMETHEUS_RULE.write_text(prometheus_rule_text())
    print(f"wrote {PROMETHEUS_RULE.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
