"""Open an explorer page in headless Chromium the way a recipient would: from disk, network off."""
from __future__ import annotations

from pathlib import Path


def open_offline(browser, path: Path):
    """(context, page) for `path` with every non-file request aborted and recorded in `page.blocked`, console
    and page errors in `page.errors`, dialogs (dismissed) in `page.dialogs`; returns once the page's script
    says it is ready. The caller closes the context."""
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 860})
    pg = context.new_page()
    pg.blocked, pg.errors, pg.dialogs = [], [], []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            pg.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(Path(path).resolve().as_uri())
    pg.wait_for_function("document.body.dataset.ready === '1'", timeout=30_000)
    return context, pg
