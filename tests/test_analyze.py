"""`tenant-guard analyze` as a user runs it: a subprocess on files, directories and stdin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import EXAMPLE_CONFIG, FIXTURES, REPO, config_data
from webhook.admission.decide import KINDS
from webhook.analyze.judge import judged_kinds

MANIFESTS = FIXTURES / "manifests"
ALLOWED_VS = MANIFESTS / "vs-reviews.yaml"  # tenant-a/reviews routes its own short name
DENIED_VS = MANIFESTS / "vs-v1alpha3-cross-tenant.yaml"  # tenant-b routes a tenant-a service
POD = MANIFESTS / "pod-labels-annotations.yaml"  # tenant-a, proxyCPULimit "2" above the bound
HIJACK_MESSAGE = (
    'VirtualService tenant-b/reviews-hijack: spec.hosts[0] "reviews.tenant-a.svc.cluster.local" '
    'belongs to tenant "tenant-a"'
)


def analyze(*args: str | Path, stdin: str | None = None, cwd: Path | None = None) -> Any:
    """Run `python -m webhook analyze` with the example config unless --config is given."""
    argv = [str(a) for a in args]
    if "--config" not in argv:
        argv = ["--config", str(EXAMPLE_CONFIG), *argv]
    return subprocess.run(
        [sys.executable, "-m", "webhook", "analyze", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def records(*args: str | Path, stdin: str | None = None) -> tuple[int, list[dict[str, Any]]]:
    result = analyze("--output", "json", *args, stdin=stdin)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)["objects"]


def write(path: Path, *documents: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def vs(namespace: str, name: str, hosts: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": hosts, **spec, "http": [{"route": [{"destination": {"host": "x"}}]}]},
    }


def namespace(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(namespace: str, name: str, annotations: dict[str, Any]) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": name}, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template},
    }


CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}


@pytest.mark.parametrize(
    ("files", "code"),
    [
        pytest.param([ALLOWED_VS], 0, id="allowed-object-exits-0"),
        pytest.param([DENIED_VS], 1, id="denied-object-exits-1"),
        pytest.param([ALLOWED_VS, DENIED_VS], 1, id="one-denied-among-several-exits-1"),
        pytest.param([MANIFESTS / "dr-reviews.yaml", POD], 0, id="destinationrule-and-pod"),
    ],
)
def test_exit_code_says_whether_anything_would_be_denied(files: list[Path], code: int) -> None:
    result = analyze(*files)
    assert result.returncode == code, result.stdout + result.stderr
    assert (HIJACK_MESSAGE in result.stdout) == (DENIED_VS in files)


def test_text_is_grouped_by_file_with_the_webhooks_own_message() -> None:
    result = analyze(ALLOWED_VS, DENIED_VS)
    lines = result.stdout.splitlines()
    assert lines[0] == str(ALLOWED_VS)
    assert lines[1].startswith("  document 1 (line 1): VirtualService tenant-a/reviews: allowed")
    assert str(DENIED_VS) in lines
    denied_at = lines.index(str(DENIED_VS))
    assert "VirtualService tenant-b/reviews-hijack: DENIED" in lines[denied_at + 1]
    assert HIJACK_MESSAGE in lines[denied_at + 2]
    assert "Fix: route only services of tenant" in lines[denied_at + 2]
    assert lines[-1] == "2 objects: 1 allowed, 0 warned, 1 denied, 0 not judged, 0 unreadable"


def test_a_directory_is_read_recursively(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", vs("tenant-a", "one", ["reviews"]))
    write(tmp_path / "apps" / "b.yml", vs("tenant-a", "two", ["ratings"]))
    (tmp_path / "apps" / "deep").mkdir()
    (tmp_path / "apps" / "deep" / "c.json").write_text(json.dumps(vs("tenant-b", "three", ["*"])))
    (tmp_path / "apps" / "README.md").write_text("not a manifest\n")
    write(tmp_path / ".git" / "d.yaml", vs("tenant-a", "hidden", ["*"]))
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\n")
    code, objects = records(tmp_path)
    assert code == 1
    assert [(Path(o["file"]).name, o["name"], o["status"]) for o in objects] == [
        ("a.yaml", "one", "allowed"),
        ("b.yml", "two", "allowed"),
        ("c.json", "three", "denied"),
    ]


def test_stdin_takes_multi_document_yaml_as_helm_template_writes_it() -> None:
    rendered = (
        "---\n# Source: shop/templates/vs.yaml\n"
        + yaml.safe_dump(vs("tenant-a", "web", ["reviews"]))
        + "---\n# Source: shop/templates/empty.yaml\n---\n# Source: shop/templates/bad.yaml\n"
        + yaml.safe_dump(vs("tenant-a", "bad", ["*"]))
    )
    starts = [n for n, line in enumerate(rendered.splitlines(), 1) if line.startswith("apiV")]
    code, objects = records("-", stdin=rendered)
    assert code == 1
    # Empty documents (a template that rendered nothing) are not counted.
    assert [(o["file"], o["document"], o["line"], o["status"]) for o in objects] == [
        ("-", 1, starts[0], "allowed"),
        ("-", 2, starts[1], "denied"),
    ]


def test_stdin_takes_json_as_kubectl_get_writes_it() -> None:
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [vs("tenant-a", "one", ["reviews"]), vs("tenant-a", "two", ["*"])],
    }
    code, objects = records("-", stdin=json.dumps(listed, indent=2))
    assert code == 1
    assert [(o["name"], o["item"], o["status"]) for o in objects] == [
        ("one", 0, "allowed"),
        ("two", 1, "denied"),
    ]


def test_typed_list_items_take_the_lists_kind(tmp_path: Path) -> None:
    items = [{k: v for k, v in vs("tenant-b", "x", ["reviews"]).items() if k != "kind"}]
    path = write(
        tmp_path / "list.yaml",
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualServiceList",
            "items": items,
        },
    )
    code, objects = records(path)
    assert code == 0
    assert [(o["kind"], o["namespace"], o["item"]) for o in objects] == [
        ("VirtualService", "tenant-b", 0)
    ]


def test_a_namespace_in_the_input_gives_its_objects_their_tenant(tmp_path: Path) -> None:
    # "shop" is not in the config: only the Namespace object before it says whose it is.
    hijack = vs("shop", "storefront", ["reviews.tenant-a.svc.cluster.local"])
    repo = write(tmp_path / "shop.yaml", namespace("shop", {"tenant": "tenant-b"}), hijack)
    code, objects = records("--as-group", "system:masters", repo)
    assert code == 1
    assert [(o["kind"], o["status"], o["tenant"]) for o in objects] == [
        ("Namespace", "allowed", "tenant-b"),
        ("VirtualService", "denied", "tenant-b"),
    ]
    assert 'route only services of tenant "tenant-b"' in objects[1]["message"]

    # A tenant's pipeline may not label namespaces: the label guard says so.
    code, objects = records(repo)
    assert code == 1
    assert objects[0]["violations"][0]["rule"] == "tenant-label"

    # Without the Namespace, "shop" is unknown: a platform namespace, said in a note.
    alone = write(tmp_path / "alone.yaml", hijack)
    result = analyze(alone)
    assert result.returncode == 0
    assert "allowed (platform namespace)" in result.stdout
    assert "note: namespace 'shop' is unknown" in result.stdout


def test_objects_without_a_namespace_take_the_namespace_option(tmp_path: Path) -> None:
    obj = vs("tenant-a", "web", ["*"])
    del obj["metadata"]["namespace"]
    path = write(tmp_path / "vs.yaml", obj)
    code, objects = records(path)
    assert (code, objects[0]["namespace"], objects[0]["status"]) == (0, "default", "allowed")
    code, objects = records("--namespace", "tenant-b", path)
    assert (code, objects[0]["namespace"], objects[0]["status"]) == (1, "tenant-b", "denied")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("kind: [unclosed\n", "not valid YAML", id="broken-yaml-document"),
        pytest.param("just a string\n", "not a mapping", id="scalar-document"),
        pytest.param("apiVersion: v1\nmetadata: {name: x}\n", "no kind", id="object-without-kind"),
    ],
)
def test_an_unreadable_document_exits_2_naming_file_and_document(
    tmp_path: Path, text: str, problem: str
) -> None:
    first = yaml.safe_dump(vs("tenant-a", "fine", ["*"]))
    line = first.count("\n") + 2  # the line after the first document and its `---`
    path = tmp_path / "broken.yaml"
    path.write_text(first + "---\n" + text + "---\n" + first.replace("fine", "after"))
    result = analyze(path)
    assert result.returncode == 2
    expected = f"  document 2 (line {line}): UNREADABLE: "
    unreadable = [ln for ln in result.stdout.splitlines() if ln.startswith(expected)]
    assert len(unreadable) == 1 and problem in unreadable[0], result.stdout
    assert str(path) in result.stdout
    # The documents around it are still judged.
    assert "VirtualService tenant-a/fine: DENIED" in result.stdout
    assert "VirtualService tenant-a/after: DENIED" in result.stdout


def test_broken_json_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "objects.json"
    path.write_text('{"apiVersion": "v1",\n "kind": }\n')
    code, objects = records(path)
    assert code == 2
    assert objects[0]["status"] == "unreadable"
    assert "not valid JSON" in objects[0]["message"] and "line 2" in objects[0]["message"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["no-such-file.yaml"], "no-such-file.yaml: no such file", id="missing-path"),
        pytest.param(["--config", "bad.yaml", "ok.yaml"], "enforcement", id="bad-config"),
    ],
)
def test_unusable_input_or_config_exits_2(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "bad.yaml").write_text("enforcement: sometimes\n")
    write(tmp_path / "ok.yaml", vs("tenant-a", "web", ["reviews"]))
    result = analyze(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert result.stdout == ""


def test_a_wrong_shape_counts_as_denied(tmp_path: Path) -> None:
    path = write(tmp_path / "vs.yaml", vs("tenant-a", "web", "reviews"))  # type: ignore[arg-type]
    code, objects = records(path)
    assert code == 1
    assert objects[0]["status"] == "denied"
    assert objects[0]["violations"][0]["rule"] == "not-checkable"
    assert "does not have the shape of a VirtualService" in objects[0]["message"]


def test_kinds_not_judged_are_counted_and_listed(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.yaml", CONFIG_MAP, vs("tenant-a", "web", ["reviews"]))
    result = analyze("--output", "json", path)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["summary"]["not-judged"] == 1
    assert document["summary"]["notJudgedKinds"] == ["ConfigMap (v1)"]
    assert document["objects"][0]["status"] == "not-judged"
    text = analyze(path).stdout
    assert "ConfigMap default/c: not judged (tenant-guard has no policy for ConfigMap" in text
    assert text.endswith("(not judged: ConfigMap (v1))\n")


def test_warn_mode_admits_and_says_why(tmp_path: Path) -> None:
    labels = {"tenant": "tenant-a", "tenant-guard.io/enforcement": "warn"}
    path = write(
        tmp_path / "warn.yaml", namespace("migrating", labels), vs("migrating", "web", ["*"])
    )
    code, objects = records("--as-group", "system:masters", path)
    assert code == 0
    assert objects[1]["status"] == "warned"
    assert objects[1]["violations"][0]["rule"] == "host-ownership"
    sarif = json.loads(analyze("--as-group", "system:masters", "-o", "sarif", path).stdout)
    assert [r["level"] for r in sarif["runs"][0]["results"]] == ["warning"]


def test_json_has_one_record_per_object(tmp_path: Path) -> None:
    code, objects = records(DENIED_VS, POD)
    assert code == 1
    hijack, pod = objects
    assert hijack["file"] == str(DENIED_VS) and hijack["document"] == 1 and hijack["line"] == 1
    assert (hijack["kind"], hijack["namespace"], hijack["name"]) == (
        "VirtualService",
        "tenant-b",
        "reviews-hijack",
    )
    assert (hijack["status"], hijack["operation"], hijack["tenant"]) == (
        "denied",
        "CREATE",
        "tenant-b",
    )
    assert hijack["violations"][0]["rule"] == "host-ownership"
    assert hijack["violations"][0]["field"] == "spec.hosts[0]"
    assert hijack["violations"][0]["owner"] == "tenant-a"
    assert hijack["violations"][0]["message"].startswith(HIJACK_MESSAGE)
    assert pod["status"] == "allowed" and pod["violations"] == []


def test_sarif_has_what_code_scanning_requires() -> None:
    result = analyze("--output", "sarif", DENIED_VS, ALLOWED_VS)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "tenant-guard" and driver["version"]
    assert [rule["id"] for rule in driver["rules"]] == ["host-ownership"]
    (finding,) = run["results"]  # the allowed object gives no result
    assert finding["ruleId"] == "host-ownership"
    assert driver["rules"][finding["ruleIndex"]]["id"] == finding["ruleId"]
    assert finding["level"] == "error"
    assert finding["message"]["text"].startswith(HIJACK_MESSAGE)
    (location,) = finding["locations"]
    physical = location["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == DENIED_VS.as_uri()
    assert physical["region"]["startLine"] == 1


def test_sarif_paths_stay_relative_and_unreadable_documents_are_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [\n")
    result = analyze("-o", "sarif", "broken.yaml", cwd=tmp_path)
    assert result.returncode == 2
    (finding,) = json.loads(result.stdout)["runs"][0]["results"]
    assert finding["ruleId"] == "unreadable-manifest" and finding["level"] == "error"
    assert finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.yaml"
    assert "broken.yaml, document 1" in finding["message"]["text"]


def test_junit_has_one_test_case_per_object(tmp_path: Path) -> None:
    mixed = write(tmp_path / "mixed.yaml", CONFIG_MAP, vs("tenant-a", "web", ["reviews"]))
    result = analyze("--output", "junit", DENIED_VS, mixed)
    assert result.returncode == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(DENIED_VS), str(mixed)]
    (denied,) = suites[0].findall("testcase")
    assert denied.get("name") == "document 1: VirtualService tenant-b/reviews-hijack"
    failure = denied.find("failure")
    assert failure is not None and failure.get("type") == "host-ownership"
    assert (failure.text or "").startswith(HIJACK_MESSAGE)
    skipped, passed = suites[1].findall("testcase")
    assert skipped.find("skipped") is not None
    assert passed.get("name") == "document 2: VirtualService tenant-a/web"
    assert list(passed) == []


def test_show_mutations_prints_what_admission_sets() -> None:
    result = analyze("--show-mutations", ALLOWED_VS, POD)
    assert result.returncode == 0
    out = result.stdout
    assert 'admission sets spec.exportTo = ["."]' in out
    assert 'admission sets metadata.labels["tenant"] = "tenant-a"' in out
    # tenant-a's cpuLimit bound is 1: the pod's "2" is clamped; its memory limit 1Gi too.
    assert 'admission sets metadata.annotations["sidecar.istio.io/proxyCPULimit"] = "1"' in out
    assert 'metadata.annotations["sidecar.istio.io/proxyMemoryLimit"] = "256Mi"' in out
    assert "warning: Pod tenant-a/annotated:" in out
    assert "admission sets" not in analyze(ALLOWED_VS, POD).stdout


@pytest.mark.parametrize(
    "workload",
    [
        pytest.param(deployment("tenant-b", "web", {}), id="deployment"),
        pytest.param(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "web", "namespace": "tenant-b"},
                "spec": {
                    "schedule": "@daily",
                    "jobTemplate": {
                        "spec": {"template": deployment("x", "y", {})["spec"]["template"]}
                    },
                },
            },
            id="cronjob",
        ),
    ],
)
def test_a_workloads_pod_template_gets_the_pod_mutation_preview(
    tmp_path: Path, workload: dict[str, Any]
) -> None:
    path = write(tmp_path / "workload.yaml", workload)
    code, objects = records(path)
    assert code == 0
    (obj,) = objects
    assert (obj["kind"], obj["name"], obj["status"]) == (workload["kind"], "web", "allowed")
    assert "pod template" in obj["reason"]
    assert {m["field"]: m["value"] for m in obj["mutations"]} == {
        'metadata.labels["tenant"]': "tenant-b",
        'metadata.annotations["sidecar.istio.io/proxyCPU"]': "100m",
        'metadata.annotations["sidecar.istio.io/proxyCPULimit"]': "500m",
        'metadata.annotations["sidecar.istio.io/proxyMemory"]': "128Mi",
        'metadata.annotations["sidecar.istio.io/proxyMemoryLimit"]': "256Mi",
    }


def test_a_pod_template_the_webhook_cannot_check_counts_as_denied(tmp_path: Path) -> None:
    # An annotation that is not a string: the webhook would refuse every Pod of it.
    path = write(
        tmp_path / "web.yaml", deployment("tenant-a", "web", {"sidecar.istio.io/proxyCPU": 2})
    )
    code, objects = records(path)
    assert code == 1
    assert objects[0]["status"] == "denied"
    assert (
        "Pod tenant-a/web-<generated>: the object does not have the shape" in objects[0]["message"]
    )


def test_the_pre_commit_hook_runs_analyze_on_the_files_it_is_given(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "tenant-guard-analyze" and hook["language"] == "python"
    changed = [write(tmp_path / "ok.yaml", vs("tenant-a", "web", ["reviews"])), DENIED_VS]
    matched = [p for p in changed if re.search(hook["files"], str(p))]
    assert matched == changed
    assert re.search(hook["exclude"], "overlays/prod/kustomization.yaml") is not None
    # pre-commit runs `entry`, then the hook's args, then the file names.
    program, *entry_args = hook["entry"].split()
    executable = Path(sys.executable).parent / program
    argv = [str(executable), *entry_args, "--config", str(EXAMPLE_CONFIG), *map(str, matched)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert HIJACK_MESSAGE in result.stdout


def test_two_tenants_routing_one_host_in_the_same_input_collide(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_data(unclaimedHosts="allow")))
    shared = "api.shared.example.net"  # claimed by nobody, so only the collision rule can deny
    path = write(
        tmp_path / "routes.yaml",
        vs("tenant-a", "one", [shared], exportTo=["."]),
        vs("tenant-a-dev", "two", [shared], exportTo=["."]),  # tenant-a's too: only b collides
        vs("tenant-b", "three", [shared], exportTo=["."]),
    )
    code, objects = records("--config", config, path)
    assert code == 1
    assert [(o["name"], o["status"]) for o in objects] == [
        ("one", "denied"),
        ("two", "denied"),
        ("three", "denied"),
    ]
    assert {v["rule"] for o in objects for v in o["violations"]} == {"host-collision"}
    assert "already routed by VirtualService tenant-b/three" in objects[0]["message"]
    assert "tenant-b/three" in objects[1]["message"] and "tenant-a/one" not in objects[1]["message"]
    assert "already routed by VirtualService tenant-a" in objects[2]["message"]
    alone = write(tmp_path / "alone.yaml", vs("tenant-a", "one", [shared], exportTo=["."]))
    assert records("--config", config, alone)[0] == 0


@pytest.mark.parametrize("command", ["analyze", "audit"])
def test_each_command_explains_itself(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webhook", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "Exit 0 when clean" in result.stdout or "Same outputs and exit codes" in result.stdout
    assert "--output" in result.stdout and "--kubeconfig" in result.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "webhook", "--help"], capture_output=True, text=True, timeout=60
    )
    assert command in listed.stdout


def test_a_route_and_a_virtualservice_of_two_tenants_in_one_input_collide(tmp_path: Path) -> None:
    # Collisions are judged whichever API each side uses, as in the webhook's live index.
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_data(unclaimedHosts="allow")))
    shared = "orders.shared.example.net"
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "orders", "namespace": "tenant-b"},
        "spec": {"parentRefs": [{"name": "edge"}], "hostnames": [shared]},
    }
    path = write(
        tmp_path / "routes.yaml", vs("tenant-a", "orders", [shared], exportTo=["."]), route
    )
    code, objects = records("--config", config, path)
    assert code == 1
    assert [(o["kind"], o["status"]) for o in objects] == [
        ("VirtualService", "denied"),
        ("HTTPRoute", "denied"),
    ]
    assert "already routed by HTTPRoute tenant-b/orders" in objects[0]["message"]
    assert "already routed by VirtualService tenant-a/orders" in objects[1]["message"]


def test_every_kind_the_webhook_judges_is_judged_by_the_kind_its_objects_carry() -> None:
    """The Gateway API Gateway is `Gateway.gateway.networking.k8s.io` to the webhook but says
    `Gateway` in its objects; analyze (and the audit, built on it) must find it by the latter."""
    judged = judged_kinds()
    for (group, resource), handling in KINDS.items():
        assert judged[(group, handling.object_kind or handling.kind)] == resource


def test_gateway_api_gateway_and_xlistenerset_are_judged(tmp_path: Path) -> None:
    listener = {"name": "h", "port": 443, "protocol": "HTTPS", "hostname": "a.example.com"}
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "takeover", "namespace": "tenant-a"},
        "spec": {
            "gatewayClassName": "istio",
            "addresses": [
                {"type": "Hostname", "value": "istio-ingressgateway.istio-system.svc.cluster.local"}
            ],
            "listeners": [listener],
        },
    }
    xlistenerset = {
        "apiVersion": "gateway.networking.x-k8s.io/v1alpha1",
        "kind": "XListenerSet",
        "metadata": {"name": "hijack", "namespace": "tenant-b"},
        "spec": {
            "parentRef": {"name": "shared-gateway", "namespace": "infra"},
            "listeners": [listener],
        },
    }
    code, objects = records(write(tmp_path / "edge.yaml", gateway, xlistenerset))
    assert code == 1
    assert [(o["kind"], o["status"]) for o in objects] == [
        ("Gateway", "denied"),
        ("XListenerSet", "denied"),
    ]
    assert [o["violations"][0]["rule"] for o in objects] == ["gateway-address", "host-ownership"]


def istio_gateway(namespace: str, selector: dict[str, str]) -> dict[str, Any]:
    port = {"name": "http", "number": 80, "protocol": "HTTP"}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": namespace},
        "spec": {"selector": selector, "servers": [{"hosts": ["./a.example.com"], "port": port}]},
    }


def test_without_a_cluster_a_gateway_says_what_its_selector_could_not_be_judged_against(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "gw.yaml",
        istio_gateway("tenant-a", {"istio": "tenant-b-ingress"}),
        istio_gateway("istio-system", {"istio": "tenant-b-ingress"}),  # platform: not judged
        istio_gateway("tenant-a", {"istio": "ingressgateway"}),  # the shared pods: denied
    )
    code, objects = records(path)
    assert code == 1
    note = (
        "spec.selector is judged against sharedGatewayWorkloads only: without a cluster "
        "(--kubeconfig) tenant-guard cannot know whether it matches gateway pods in other "
        "tenants' namespaces, which admission in the cluster denies"
    )
    assert [(o["status"], o["notes"]) for o in objects] == [
        ("allowed", [note]),
        ("allowed", []),
        ("denied", [note]),
    ]
    assert f"    note: {note}" in analyze(path).stdout
