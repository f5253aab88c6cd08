"""The `tenant-guard` command: serve, certs, check, review, analyze, audit."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from webhook.config.model import Config, ConfigError, load_config

DESCRIPTION = """\
tenant-guard: a Kubernetes admission webhook that enforces tenant boundaries in a shared
Istio mesh. It denies VirtualServices that route another tenant's hosts, denies exportTo
beyond the object's namespace, guards the tenant label, and gives tenant pods sidecar
CPU/memory bounds and their tenant label."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tenant-guard",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the admission webhook server (HTTPS only)",
        description="Run the webhook: POST /validate and /mutate (AdmissionReview v1), "
        "GET /healthz, /readyz and /metrics, over HTTPS (TLS 1.2 or later). With no "
        "certificate given, a dev CA and serving certificate are generated into ./certs.",
    )
    serve.add_argument("--config", required=True, type=Path, help="config file (YAML)")
    certs = serve.add_mutually_exclusive_group()
    certs.add_argument(
        "--cert-dir",
        type=Path,
        help="directory with tls.crt and tls.key (a mounted kubernetes.io/tls "
        "Secret); polled and reloaded on change",
    )
    certs.add_argument("--tls-cert", type=Path, help="serving certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, help="serving key (PEM), with --tls-cert")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8443, help="port (default 8443)")
    serve.add_argument(
        "--dev-cert-dir",
        type=Path,
        default=Path("certs"),
        help="where dev certificates are generated when none is given (default ./certs)",
    )
    cluster = serve.add_mutually_exclusive_group()
    cluster.add_argument(
        "--kubeconfig",
        help="read namespaces and VirtualServices from the "
        "cluster of this kubeconfig (list+watch caches)",
    )
    cluster.add_argument(
        "--in-cluster",
        action="store_true",
        help="read namespaces and VirtualServices from the cluster this pod "
        "runs in (service account)",
    )
    serve.add_argument(
        "--config-poll-seconds",
        type=float,
        default=5.0,
        help="how often the config file is checked for changes (default 5)",
    )
    serve.add_argument(
        "--cert-poll-seconds",
        type=float,
        default=10.0,
        help="how often certificate files are checked for changes (default 10)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    audit_options = serve.add_argument_group(
        "audit (cluster mode)",
        "With --kubeconfig or --in-cluster, the objects already in tenant namespaces are judged "
        "after the caches list, after each config reload and after changes; the violations "
        "are in /metrics (tenant_guard_audit_violations).",
    )
    audit_options.add_argument(
        "--policy-reports",
        nargs="?",
        const="auto",
        choices=["auto", "openreports", "wgpolicy"],
        metavar="auto|openreports|wgpolicy",
        help="also keep one report per tenant namespace: an OpenReports Report "
        "(openreports.io/v1alpha1) or a wg-policy PolicyReport (wgpolicyk8s.io/v1alpha2), "
        "whichever CRD is served, the first when both are (auto, the default), or the one "
        "named (needs deploy/components/policy-reports' RBAC)",
    )
    audit_options.add_argument(
        "--audit-debounce-seconds",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long changes must settle before an audit pass (default 2)",
    )
    managed = serve.add_argument_group(
        "self-managed certificates",
        "With --manage-certs the CA and serving certificate are kept in a Secret (created, "
        "renewed, shared by every replica), written to --cert-dir, and the CA is patched into "
        "the caBundle of the named webhook configurations. Needs --cert-dir and --in-cluster "
        "or --kubeconfig.",
    )
    managed.add_argument(
        "--manage-certs", action="store_true", help="manage the certificates (no cert-manager)"
    )
    managed.add_argument(
        "--cert-secret",
        default="tenant-guard-tls",
        metavar="NAME",
        help="the Secret holding CA and certificate (default tenant-guard-tls)",
    )
    managed.add_argument(
        "--service",
        default="tenant-guard",
        metavar="NAME",
        help="the webhook's Service, named in the certificate (default tenant-guard)",
    )
    managed.add_argument(
        "--namespace",
        metavar="NS",
        help="namespace of the Secret and Service (default $POD_NAMESPACE, else the pod's "
        "service-account namespace)",
    )
    managed.add_argument(
        "--cert-check-seconds",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how often the Secret and caBundles are checked, so a deleted Secret (a forced "
        "new CA) is noticed (default 300)",
    )
    managed.add_argument(
        "--webhook-configuration",
        action="append",
        default=[],
        metavar="NAME",
        help="a validating or mutating webhook configuration whose caBundle to set (repeatable)",
    )

    certs_cmd = commands.add_parser(
        "certs",
        help="write a CA and a serving certificate signed by it",
        description="Write ca.crt, ca.key, tls.crt and tls.key (keys mode 0600) into --out: a "
        "CA and a serving certificate for the webhook Service (NAME, NAME.NS, NAME.NS.svc, "
        "NAME.NS.svc.cluster.local, extras, and localhost/127.0.0.1 for local use).",
    )
    certs_cmd.add_argument("--out", required=True, type=Path, help="output directory")
    certs_cmd.add_argument("--service", default="tenant-guard", help="Service name")
    certs_cmd.add_argument("--namespace", default="tenant-guard", help="Service namespace")
    certs_cmd.add_argument(
        "--dns", action="append", default=[], metavar="EXTRA", help="an extra DNS name (repeatable)"
    )
    certs_cmd.add_argument(
        "--days", type=int, default=365, help="serving certificate lifetime in days (default 365)"
    )

    check = commands.add_parser(
        "check",
        help="validate a config file and exit",
        description="Load and validate a config file; print what is wrong and exit 1, or "
        "summarise it and exit 0. Use it in CI before rolling out a ConfigMap change.",
    )
    check.add_argument("--config", required=True, type=Path, help="config file (YAML)")

    review = commands.add_parser(
        "review",
        help="answer one AdmissionReview from a file, offline",
        description="Read an AdmissionReview request (JSON) and print the response the server "
        "would give, using the config's namespaces map for tenancy. Handy in CI pipelines.",
    )
    review.add_argument("--config", required=True, type=Path, help="config file (YAML)")
    review.add_argument("--endpoint", choices=["validate", "mutate"], default="validate")
    review.add_argument("file", type=Path, help="AdmissionReview JSON ('-' for stdin)")

    from webhook.analyze.command import add_arguments

    analyze = commands.add_parser(
        "analyze",
        help="judge manifests before they are applied (CI, pre-commit)",
        description="Judge Kubernetes manifests with the webhook's own rules and messages: "
        "files, directories (*.yaml, *.yml, *.json, recursively), '-' for stdin; "
        "multi-document YAML, JSON, List objects, kustomize build / helm template output. "
        "Exit 0 when clean, 1 when any object would be denied, 2 on unreadable input or a "
        "bad config.",
    )
    add_arguments(analyze, audit=False)
    audit = commands.add_parser(
        "audit",
        help="judge the objects already in a cluster, once",
        description="List every object of the kinds tenant-guard judges in tenant namespaces "
        "(one paged list per kind) and judge each against the current config and the live "
        "tenancy, collisions included. Same outputs and exit codes as analyze.",
    )
    add_arguments(audit, audit=True)

    tenants_cmd = commands.add_parser(
        "tenants",
        help="work with Tenant objects (tenants export)",
        description="Tenants as Kubernetes objects (tenant-guard.io/v1alpha1 Tenant).",
    )
    tenants_actions = tenants_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = tenants_actions.add_parser(
        "export",
        help="print a config's tenants as Tenant objects",
        description="Print every tenant of the config's tenants: section as a Tenant object "
        "(multi-document YAML, sorted by name), to move tenants from the ConfigMap to objects: "
        "apply the output (kubectl apply --server-side -f -), then remove the tenants from "
        "the config. Until then each Tenant is shadowed by the config's entry of its name.",
    )
    export.add_argument("--config", required=True, type=Path, help="config file (YAML)")
    export.add_argument(
        "--out-dir",
        type=Path,
        help="write one directory per tenant (DIR/<tenant>/tenant.yaml) instead of stdout, "
        "the layout an ArgoCD ApplicationSet git generator reads",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from webhook.server.run import serve

        return serve(args)
    if args.command == "certs":
        return _certs(args)
    if args.command == "check":
        return _check(args)
    if args.command == "tenants":
        return _tenants_export(args)
    if args.command in ("analyze", "audit"):
        from webhook.analyze.command import run_analyze, run_audit

        return run_analyze(args) if args.command == "analyze" else run_audit(args)
    return _review(args)


def _certs(args: argparse.Namespace) -> int:
    from webhook.certificates.authority import generate_bundle, write_bundle

    bundle = generate_bundle(args.service, args.namespace, extra_dns=args.dns, days=args.days)
    write_bundle(bundle, args.out)
    print(
        f"wrote {args.out}/ca.crt, ca.key, tls.crt, tls.key "
        f"(service {args.service}.{args.namespace}, {args.days} days)"
    )
    return 0


def _load_or_report(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    config = _load_or_report(args.config)
    if config is None:
        return 1
    namespaces = "none (cluster mode)" if config.namespaces is None else len(config.namespaces)
    print(
        f"{args.config}: ok — {len(config.tenants)} tenants, "
        f"{sum(len(t.hosts) for t in config.tenants.values())} claimed hosts, "
        f"enforcement {config.enforcement.value}, offline namespaces: {namespaces}"
    )
    return 0


def _tenants_export(args: argparse.Namespace) -> int:
    import yaml

    from webhook.tenancy.tenants import export_problem, tenant_object

    config = _load_or_report(args.config)
    if config is None:
        return 1
    objects, problems = [], []
    for name, spec in sorted(config.tenants.items()):
        problem = export_problem(name, spec.hosts)
        if problem is not None:
            problems.append(f"tenants.{name}: {problem}")
            continue
        objects.append(tenant_object(name, dict.fromkeys(spec.hosts), spec.proxy.by_config_key()))
    for problem in problems:
        print(f"tenant-guard tenants export: {problem}; not exported", file=sys.stderr)
    if args.out_dir is None:
        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False) if objects else "")
        return 1 if problems else 0
    for obj in objects:
        directory = args.out_dir / obj["metadata"]["name"]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "tenant.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    print(f"wrote {len(objects)} Tenant(s) under {args.out_dir}/", file=sys.stderr)
    return 1 if problems else 0


def _review(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from webhook.admission.decide import decide
    from webhook.admission.review import parse_review
    from webhook.tenancy.view import static_view

    config = _load_or_report(args.config)
    if config is None:
        return 1
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
    try:
        review = parse_review(text)
    except ValidationError as exc:
        print(f"{args.file}: not a valid AdmissionReview v1: {exc}", file=sys.stderr)
        return 1
    view = static_view(config.namespaces)
    decision = decide(review.request, args.endpoint, view, config)
    print(json.dumps(decision.response, indent=2))
    return 0 if decision.allowed else 3
