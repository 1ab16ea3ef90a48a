"""Serving the dashboard: ``sim dash [--host H] [--port N] [--open]``.

The page is a Solara app (:mod:`sim.dashboard.app`) run by Solara's own server in production mode,
bound to 127.0.0.1 unless told otherwise. The server is kept local and quiet: Solara's usage
telemetry and its version check are switched off, and the web assets the page loads are served
from the ``solara-assets`` package (through Solara's asset route), so it works without internet.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
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


def warm_up() -> None:
    """What the first page and its first run would otherwise wait for, done while the server waits
    for its first visitor: the page's modules imported, the opening scenario composed as the page
    shows it and as it first runs it (Hydra's first composition in a process), and the compiled
    kernels that run needs loaded (the same scenario at 1,000 people; :mod:`sim.compiled`). Started
    in the background by :func:`serve`; what fails here is left for the page to meet and report."""
    try:
        import networkx  # noqa: F401 (the graph view's layout)

        import sim
        from sim.dashboard import app, knobs

        app.knob_groups()
        app.reference(app.DEFAULT_SCENARIO)
        sim.compose(app.DEFAULT_SCENARIO, [f"population.size={knobs.DASHBOARD_POPULATION}"])
        sim.simulate(sim.compose(app.DEFAULT_SCENARIO, ["population.size=1000"]))
    except Exception:  # noqa: BLE001
        logging.getLogger("sim.dashboard").debug("warming up failed", exc_info=True)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, open_browser: bool = False, warm: bool = True) -> int:
    """Run the dashboard until interrupted (blocking). ``warm``: prepare the first page and run in
    the background meanwhile (:func:`warm_up`)."""
    check_port(host, port)
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    if warm:
        threading.Thread(target=warm_up, name="warm up", daemon=True).start()
    from solara.__main__ import cli  # after the environment is set: Solara reads it on import

    # Served over plain http on this machine, Solara falls back to samesite=lax cookies, as it should.
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")

    print(f"growth-sim dashboard at http://{host}:{port}  (Ctrl+C stops it)", file=sys.stderr, flush=True)
    args = ["run", APP, "--host", host, "--port", str(port), "--production", "--no-check-version",
            "--open" if open_browser else "--no-open", "--log-level", "warning", "--theme-loader", "plain"]
    cli.main(args=args, prog_name="sim dash", standalone_mode=False)
    return 0
