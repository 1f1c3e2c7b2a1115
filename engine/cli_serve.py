"""The two commands that serve until stopped: `explore` (build the page, open or serve it) and `serve-llm`.

Both install their signal handling before any slow work, so Ctrl-C or SIGTERM during a model load or a page
build stops the command instead of being lost, and both check, after that work and while they serve, for a stop
Python dropped on the way (a KeyboardInterrupt raised inside a finalizer or weakref callback is printed as
"Exception ignored in" and goes no further)."""
from __future__ import annotations

import argparse
import os
import sys

from clio_engine.errors import ClioError


def cmd_explore(args: argparse.Namespace) -> int:
    """Rebuild explorer.html from the run directory's published files, then open or serve it."""
    signals = StopSignals()  # first: a Ctrl-C during the build or the serving is never lost
    try:
        return _explore(args, signals)
    finally:
        signals.restore()


def _explore(args: argparse.Namespace, signals: "StopSignals") -> int:
    import webbrowser

    from clio_engine.explorer import build_explorer

    page = build_explorer(args.run_dir)
    print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB)")
    if args.serve:
        from clio_engine.explorer.serve import make_server, open_in_browser

        server = make_server(page, port=args.port)
        # The path holds the server's secret token: print it (this terminal only), never pass it in a command line.
        url = f"http://127.0.0.1:{server.server_address[1]}{server.page_path}"
        redirect = None
        try:  # the line is printed inside: a script that signals as soon as it reads it gets the clean stop too
            signals.watch(server)
            print(f"serving {page.name} at {url} (Ctrl-C stops)", flush=True)
            if not args.no_open:
                _, redirect = open_in_browser(url)
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.server_close()
            if redirect is not None:
                redirect.unlink(missing_ok=True)
    elif not args.no_open and not webbrowser.open(page.resolve().as_uri()):
        print(f"no browser found here; open {page.resolve().as_uri()} or use --serve")
    return 0


def cmd_serve_llm(args: argparse.Namespace) -> int:
    """Load the model, bind, print the base URL (one line, flushed: scripts wait for it), serve until Ctrl-C."""
    signals = StopSignals()  # first: a Ctrl-C while the model loads stops the command, not lost
    try:
        return _serve_llm(args, signals)
    finally:
        signals.restore()


def _serve_llm(args: argparse.Namespace, signals: "StopSignals") -> int:
    import faulthandler
    import signal

    from clio_engine.llm.serve import ModelServer

    if args.socket is not None and (args.host != "127.0.0.1" or args.port != 8000):
        raise ClioError("--socket replaces --host and --port: give one or the other")
    key = None
    if args.api_key_env is not None:
        key = os.environ.get(args.api_key_env, "").strip()
        if not key:
            raise ClioError(f"--api-key-env {args.api_key_env}: that environment variable is unset or empty")
    server = ModelServer(args.model_path, model_name=args.model_name, host=args.host, port=args.port,
                         device=args.device, batch_size=args.batch_size, seed=args.seed,
                         batch_wait_s=args.batch_wait_ms / 1000, api_key=key, max_tokens=args.max_tokens,
                         socket_path=args.socket).start()
    try:
        signals.raise_if_asked()  # a stop dropped during the imports or the load: never serve (exit 130)
        if not server.loopback and key is None:  # the address bound decides: 127.1 is loopback, "" is refused
            print(f"clio-engine: warning: serving on {args.host} without authentication: anyone who can reach it "
                  "can use the model (--api-key-env VAR requires a key)", file=sys.stderr)
        if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` prints every thread's stack: a stuck server says where
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        try:  # the line is printed inside: a script that signals as soon as it reads it gets the clean close too
            where = (f"on the socket {server.socket_path} (llm.backend: openai, llm.socket: {server.socket_path}"
                     if server.socket_path is not None else f"at {server.url} (llm.backend: openai, llm.base_url: {server.url}")
            print(f"serving {server.model_name} {where}, llm.model: {server.model_name}; Ctrl-C stops)", flush=True)
            server.serve_forever(between_turns=signals.raise_if_asked)
        except KeyboardInterrupt:
            print("stopped", flush=True)
    finally:
        server.close()
    return 0


class StopSignals:
    """Make SIGINT and SIGTERM stop the command cleanly (as KeyboardInterrupt) until `restore()`.

    SIGINT: a non-interactive shell starts a background job (`serve-llm &`, a CI script) with SIGINT ignored,
    and Python then leaves it ignored, so `kill -INT` did nothing (a test server once outlived its test that
    way). SIGTERM: what `docker stop`, systemd and `kill` send; its default ends the process without the 503s
    and the clean close. Commands install it before any slow work: a signal during a model's load or a
    page's build was lost when it came after. A signal is also recorded (`asked`): where its KeyboardInterrupt
    lands inside a finalizer or weakref callback (importlib's module locks have one), Python drops it, and
    `raise_if_asked` or a `watch`ed server raises it again."""

    def __init__(self):
        import signal
        import threading

        self.asked = False
        self._before: dict = {}
        if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
            return
        self._before = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _stop(self, signum, frame):
        self.asked = True
        raise KeyboardInterrupt

    def raise_if_asked(self) -> None:
        if self.asked:
            raise KeyboardInterrupt

    def watch(self, server) -> None:
        """Check for a dropped stop on every turn of a socketserver's `serve_forever` loop (~0.5 s)."""
        server.service_actions = self.raise_if_asked

    def restore(self) -> None:
        import signal

        for sig, handler in self._before.items():
            signal.signal(sig, handler)
