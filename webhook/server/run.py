"""Starting the server: config, certificates, tenancy source, uvicorn. The only uvicorn caller."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from webhook.certificates.authority import CertReloader, ensure_dev_certs, harden_server_context
from webhook.config.model import ConfigError
from webhook.config.store import ConfigStore
from webhook.server import logs
from webhook.server.app import Runtime, create_app
from webhook.server.protocol import GatheringHttpToolsProtocol

log = logging.getLogger("tenant_guard.server")


def _certificate_files(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise SystemExit("tenant-guard serve: --tls-cert and --tls-key go together")
        return args.tls_cert, args.tls_key
    if args.cert_dir:
        return args.cert_dir / "tls.crt", args.cert_dir / "tls.key"
    ca, cert, key, generated = ensure_dev_certs(args.dev_cert_dir)
    what = "generated a dev CA and serving certificate" if generated else "using the dev CA"
    print(
        f"tenant-guard: {what} in {args.dev_cert_dir.resolve()}/\n"
        f"  trust it with: curl --cacert {ca} https://localhost:{args.port}/healthz",
        file=sys.stderr,
        flush=True,
    )
    return cert, key


def build_runtime(args: argparse.Namespace, store: ConfigStore) -> Runtime:
    runtime = Runtime(store)
    if args.kubeconfig or args.in_cluster:
        from webhook.tenancy.live import ClusterTenancy

        tenancy = ClusterTenancy.connect(
            kubeconfig=args.kubeconfig,
            in_cluster=args.in_cluster,
            current_config=lambda: store.current,
            metrics=runtime.metrics,
        )
        runtime.tenancy = tenancy
        runtime.closers.append(tenancy.close)
        runtime.background.append(tenancy.follow_config)
        from webhook.baseline.reconciler import start_from_args as start_baseline

        start_baseline(args, store, tenancy.cluster, runtime)
        from webhook.audit.auditor import start_from_args as start_audit

        live = tenancy.tenants
        audit = start_audit(
            args,
            store,
            tenancy.cluster,
            runtime,
            tenants=(lambda: live.current) if live is not None else (lambda: None),
        )
        if live is not None and tenancy.members is not None:
            from webhook.tenancy.publisher import start_from_args as start_status

            def violations() -> dict[str, int] | None:
                return audit.last.by_tenant() if audit.last is not None else None

            writer = start_status(
                args, tenancy.cluster, live, tenancy.members, lambda: store.current, violations
            )
            runtime.background.append(writer.run)
            runtime.closers.append(writer.close)
            runtime.notes.append(writer.notes)
            writer.export_metrics(runtime.metrics)
    elif store.current.namespaces is None:
        log.warning(
            "offline mode and the config has no namespaces: map: every namespace is "
            "treated as a platform namespace (nothing is enforced)"
        )
    runtime.background.append(lambda: store.run(args.config_poll_seconds))
    return runtime


def uvicorn_config(
    app: ASGIApp, *, host: str, port: int, cert_file: Path, key_file: Path, **options: Any
) -> uvicorn.Config:
    """uvicorn as tenant-guard runs it (the tests' servers too), loaded, its TLS hardened."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
        loop="uvloop",
        http=GatheringHttpToolsProtocol,  # httptools, each response in one write
        access_log=False,  # one decision line per review is logged instead
        lifespan="on",
        **options,
    )
    config.load()
    assert config.ssl is not None
    harden_server_context(config.ssl)
    return config


def serve(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    try:
        store = ConfigStore(args.config)
    except ConfigError as exc:
        print(f"tenant-guard: cannot start, the config is invalid:\n{exc}", file=sys.stderr)
        return 2
    manager = None
    if args.manage_certs:
        from webhook.certificates.manager import start_from_args

        manager = start_from_args(args, store.current.domain)  # before the files are read
    cert_file, key_file = _certificate_files(args)
    runtime = build_runtime(args, store)
    lines = logs.decision_lines()
    if lines is not None:
        runtime.closers.append(lines.close)  # the last turn's lines, at shutdown
    if manager is not None:
        manager.attach(runtime)

    config = uvicorn_config(
        create_app(runtime),
        host=args.host,
        port=args.port,
        cert_file=cert_file,
        key_file=key_file,
        log_config=None,  # our JSON logging stays in place
        timeout_graceful_shutdown=10,
    )
    assert config.ssl is not None
    # It reads the files uvicorn just loaded, so its expiry is known from the start.
    reloader = CertReloader(config.ssl, cert_file, key_file, interval=args.cert_poll_seconds)
    runtime.metrics.cert_expiry.set_function(
        lambda: reloader.current_not_after.timestamp() if reloader.current_not_after else 0.0
    )
    runtime.background.append(reloader.run)
    log.info("tenant-guard listening on https://%s:%d", args.host, args.port)
    uvicorn.Server(config).run()
    return 0
