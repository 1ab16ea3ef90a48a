"""Serving the dashboard: ``sim dash [--host H] [--port N] [--open]``.

The page is a Solara app (:mod:`sim.dashboard.app`) run by Solara's own server in production mode,
bound to 127.0.0.1 unless told otherwise. The server is kept local and quiet: Solara's usage
telemetry and its version check are switched off, and the web assets the page loads are served
from the ``solara-assets`` package (through Solara's asset route), so it works without internet.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings

from sim.schema import ConfigError

APP = "sim.dashboard.app:Page"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

QUIET = {
    "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "false",  # no usage reports
    "SOLARA_THEME_VARIANT": "light",
    "SOLARA_KERNEL_CULL_TIMEOUT": "10m",  # a closed tab's session is dropped after 10 minutes, not 24 h
}


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when the address cannot be served."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: allowed is a port number in [0, 65535]")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except socket.gaierror:
        raise ConfigError(f"--host {host}: not an address of this machine") from None
    except OSError as exc:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); choose another with --port N") from None


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, open_browser: bool = False) -> int:
    """Run the dashboard until interrupted (blocking)."""
    check_port(host, port)
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    from solara.__main__ import cli  # after the environment is set: Solara reads it on import

    # Served over plain http on this machine, Solara falls back to samesite=lax cookies, as it should.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")

    print(f"growth-sim dashboard at http://{host}:{port}  (Ctrl+C stops it)", file=sys.stderr, flush=True)
    args = ["run", APP, "--host", host, "--port", str(port), "--production", "--no-check-version",
            "--open" if open_browser else "--no-open", "--log-level", "warning", "--theme-loader", "plain"]
    cli.main(args=args, prog_name="sim dash", standalone_mode=False)
    return 0
