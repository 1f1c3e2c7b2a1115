"""`Generator`: batched chat requests through one backend, with the call cache, bounded concurrency,
retries, one re-ask for malformed structured output, a cost ceiling, usage per stage and a progress bar.

    gen = make_generator(cfg, cache_dir=run_dir / RUN_CACHE)  # private/cache/llm
    results = gen.generate([Request.user("Summarise: ..."), ...], stage="facets")
    manifest["llm"] = gen.usage()

Every request gets exactly one `Result`, in order. Order of work per request: the cache (a hit is
returned as it was, parsed again when structured); else up to `max_retries + 1` tries of each call,
waiting per `retry.Backoff` after a transient failure; a structured answer that fails to parse is asked
once more with the parse error appended, then recorded as a failure (an answer cut at max_tokens is not asked
again; a format with `whole_part`, a list, parses the part of it that holds whole items). Finished answers — successes and the
deterministic failures (malformed after the re-ask, truncated JSON) — are cached as they finish, one
line each in this process's call log (`cache.CallCache`); transient give-ups, refusals (4xx) and cost-ceiling stops are not, so a later run tries them again.

Identical requests in one batch (one cache key) are sent once and share the answer. A request whose text
is not valid Unicode fails alone, with that reason. When `max_failures_in_a_row` requests in a row fail
for the server's reasons (not for a malformed answer) — a server that is down, a model it does not have, an
exhausted quota — the stage stops with one line (`ServerFailing`) instead of trying every remaining
request; finished calls stay cached, so a rerun resumes. A 401/403 stops it at the first
(`retry.CredentialsRefused`). Ctrl-C stops sending at once, also from a notebook (where `generate` runs on
a helper thread).

The cost ceiling is checked before every send: once the spend reaches `max_cost_usd`, no further call is
sent and every request not yet finished fails with "cost ceiling reached". Calls already in flight finish
and are kept, so the spend can pass the ceiling by at most `max_concurrency` calls. With a cache directory
the spend is also logged there (`cache.SpendLog`) and an invocation starts from what earlier ones in the
same run spent, so rerunning a stopped run does not spend the ceiling again. Reported token counts are
clamped at zero and raised to a floor from the text's length (`usage.floor_tokens`), so a server
reporting zero or negative counts cannot defeat the ceiling.

Hostile replies: one that is not valid Unicode (a lone surrogate) fails its request alone; an HTML error
page in a 200 body (a proxy's "502 Bad Gateway") is retried as a transient failure, never cached; a
plain-text format's reply is cut to `max_tokens × MAX_CHARS_PER_TOKEN` characters before it is parsed.
"""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import re
import threading
import time
from typing import Any, Iterable

from clio_engine.errors import ClioError, ConfigError
from clio_engine.llm import structured
from clio_engine.llm.backends.base import Backend, Call
from clio_engine.llm.cache import CallCache, SpendLog, call_key, schema_json
from clio_engine.llm.progress import Progress
from clio_engine.llm.retry import NO_TEXT, REFUSED, Backoff, Permanent, Transient
from clio_engine.llm.types import COST_CEILING, Request, Result
from clio_engine.llm.usage import (MAX_CHARS_PER_TOKEN, PriceTable, StageUsage, estimate_tokens, floor_tokens,
                                    reason_kind)
from clio_engine.unicode_text import encodable


NOT_UNICODE = "request is not valid Unicode"
NOT_UNICODE_REPLY = "reply is not valid Unicode"
ERROR_PAGE = "the server sent an HTML error page, not an answer"
# An HTML document naming an HTTP error: a proxy's page in a 200 body, not a model's answer
_ERROR_PAGE = re.compile(r"^\s*(?:<!doctype html|<html|<head|<title|<body|<center>|<h1>)", re.IGNORECASE)
_ERROR_STATUS = re.compile(r"\b(?:[45]\d\d\b|bad gateway|service unavailable|gateway time-?out|internal server error|"
                           r"too many requests)", re.IGNORECASE)


class ServerFailing(ClioError, RuntimeError):
    """`max_failures_in_a_row` requests in a row failed for the server's reasons: the stage stops."""


def _check_settings(max_concurrency, max_retries, backoff_s, max_cost_usd, max_tokens, temperature) -> None:
    """One-line ConfigError for a setting no call could use (the config layer checks these too; the
    Generator is also public API)."""
    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v

    for name, value, ok in (("max_concurrency", max_concurrency, whole(max_concurrency) and max_concurrency >= 1),
                            ("max_retries", max_retries, whole(max_retries) and max_retries >= 0),
                            ("backoff_s", backoff_s, number(backoff_s) and backoff_s >= 0),
                            ("max_cost_usd", max_cost_usd, max_cost_usd is None or (number(max_cost_usd) and max_cost_usd >= 0)),
                            ("max_tokens", max_tokens, whole(max_tokens) and max_tokens >= 1),
                            ("temperature", temperature, number(temperature) and 0 <= temperature <= 2)):
        if not ok:
            raise ConfigError(f"Generator: {name} = {value!r} is out of range")


class Generator:
    def __init__(self, backend: Backend, *, cache_dir=None, max_concurrency: int = 16, max_retries: int = 5,
                 backoff_s: float = 1.0, max_cost_usd: float | None = None, prices=None, max_tokens: int = 512,
                 temperature: float = 0.0, progress: bool = True, seed: int = 0,
                 max_failures_in_a_row: int | None = None):
        _check_settings(max_concurrency, max_retries, backoff_s, max_cost_usd, max_tokens, temperature)
        # Default: two rounds of the calls in flight, at least 20 — a few unlucky requests never stop a stage.
        self.max_failures_in_a_row = max_failures_in_a_row or max(20, 2 * max_concurrency)
        self._failing_in_a_row = 0
        self.backend = backend
        self.cache = CallCache(cache_dir)
        self.max_concurrency, self.max_cost_usd = max_concurrency, max_cost_usd
        self.backoff = Backoff(backoff_s=backoff_s, max_retries=max_retries, seed=seed)
        self.prices = PriceTable(prices or {})
        self.max_tokens, self.temperature, self.progress = max_tokens, temperature, progress
        self.spent_usd = 0.0  # by this generator; `_spend.earlier`: by earlier invocations of the run
        self._spend = SpendLog(cache_dir)
        self._usage: dict[str, StageUsage] = {}

    # ------------------------------------------------------------------ public

    def generate(self, requests: Iterable[Request], *, stage: str = "default", progress: bool | None = None) -> list[Result]:
        """One result per request, in order. Blocking; from a thread that already runs an event loop (a
        notebook) it runs on a helper thread — `await agenerate(...)` there avoids that."""
        work = self.agenerate(requests, stage=stage, progress=progress)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        return _run_on_helper_thread(work)

    async def agenerate(self, requests: Iterable[Request], *, stage: str = "default",
                        progress: bool | None = None) -> list[Result]:
        requests = list(requests)
        self._failing_in_a_row = 0  # failures in a row are counted within one call: an earlier stage's do not carry over
        use = self._usage.setdefault(stage, StageUsage())
        started = time.perf_counter()
        results: list[Result | None] = [None] * len(requests)
        keys: list[str | None] = []
        for i, r in enumerate(requests):
            try:
                keys.append(self.key(r))
            except UnicodeEncodeError as e:  # a lone surrogate: no server can be sent it; this request fails alone
                keys.append(None)
                results[i] = Result(ok=False, error=f"{NOT_UNICODE}: {e.reason} at position {e.start}")
        pending, first_of = [], {}
        for i, (request, key) in enumerate(zip(requests, keys)):
            if key is None or key in first_of:
                continue
            hit = self.cache.get(key)
            if hit is None:
                first_of[key] = i
                pending.append(i)
            else:
                results[i] = _reparse(hit, request.schema)
        bar = Progress(len(requests), stage, enabled=self.progress if progress is None else progress)
        bar.advance(len(requests) - len(pending), 0)
        if pending:
            await self.backend.start()
            try:
                todo = iter(pending)

                async def worker():
                    for i in todo:  # one shared iterator: each index goes to exactly one worker
                        results[i] = await self._one(requests[i], keys[i], use)
                        self._count_in_a_row(results[i])
                        bar.advance(1, results[i].prompt_tokens + results[i].completion_tokens)

                tasks = [asyncio.create_task(worker()) for _ in range(min(self.max_concurrency, len(pending)))]
                try:
                    await asyncio.gather(*tasks)
                except BaseException:  # a setup error or a cancellation: stop every worker before cleaning up
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    raise
            finally:
                await self.backend.stop()
                bar.close()
        else:
            bar.close()
        for i, key in enumerate(keys):  # a repeat of a request in this batch shares its answer
            if results[i] is None:
                results[i] = _repeat(results[first_of[key]])
        for r in results:
            use.requests += 1
            use.cached += r.cached
            if not r.ok:
                use.failures += 1
                use.reasons[reason_kind(r.error or "")] += 1
        use.wall_s += time.perf_counter() - started
        return results

    def usage(self) -> dict[str, dict]:
        """Per stage: requests, cached, calls, retries, reasks, failures, tokens, cost_usd, wall_s, failure_reasons,
        and `priced` (False: the model has no price in `llm.prices`, so its cost_usd of 0 is no price)."""
        priced = self.prices.priced(self.backend.model)
        return {stage: {**u.as_dict(), "priced": priced} for stage, u in self._usage.items()}

    def key(self, request: Request) -> str:
        max_tokens, temperature = self._params(request)
        identity = getattr(self.backend, "cache_identity", None)
        return call_key(self.backend.name, self.backend.model, request, max_tokens, temperature,
                        identity(temperature) if identity is not None else None)

    def _count_in_a_row(self, result: Result) -> None:
        """Count requests failing in a row for the server's reasons; ServerFailing at the limit."""
        if result.ok or result.cached:
            self._failing_in_a_row = 0
            return
        error = result.error or ""
        if error == COST_CEILING or error.startswith(("malformed", "truncated", NOT_UNICODE, NOT_UNICODE_REPLY,
                                                      REFUSED, NO_TEXT)):
            return  # the ceiling is a clean stop; a malformed answer, a refusal or a tool call is the model's doing
        self._failing_in_a_row += 1
        if self._failing_in_a_row >= self.max_failures_in_a_row:
            raise ServerFailing(f"{self._failing_in_a_row} LLM requests in a row failed, the last with "
                                f"{' '.join(error.split())[:200]!r}; stopping the stage (finished calls are "
                                "cached: a rerun resumes)")

    # ------------------------------------------------------------------ one request

    def _params(self, request: Request) -> tuple[int, float]:
        return (request.max_tokens if request.max_tokens is not None else self.max_tokens,
                request.temperature if request.temperature is not None else self.temperature)

    def _stopped(self) -> bool:
        return self.max_cost_usd is not None and self._spend.earlier + self.spent_usd >= self.max_cost_usd

    async def _one(self, request: Request, key: str, use: StageUsage) -> Result:
        max_tokens, temperature = self._params(request)
        structured.check_schema_valid(request.schema)  # the caller's schema, before a call is paid for
        schema = schema_json(request.schema)
        text_format = structured.is_text_format(request.schema)
        native = None if text_format else schema  # only a JSON schema can be sent as response_format
        system = request.system
        if schema is not None:
            system = (system + "\n\n" if system else "") + structured.instruction(request.schema if text_format else schema)
        skeleton = getattr(request.schema, "skeleton", None) if text_format else None
        answer_format = request.schema if text_format else None
        call = Call(system, request.messages, max_tokens, temperature, native, skeleton, answer_format)
        result = Result(ok=False)
        started = time.perf_counter()
        failed_tries, reasked = 0, False
        while True:
            if self._stopped():
                return _finish(result, started, error=COST_CEILING)
            result.attempts += 1
            use.calls += 1
            try:
                done = await self.backend.complete(call)
                if _error_page(done.text):  # a proxy's page, not the model's answer: try again, never cache it
                    raise Transient(ERROR_PAGE)
            except Transient as e:
                failed_tries += 1
                use.retries += 1
                if failed_tries > self.backoff.max_retries:
                    return _finish(result, started, error=f"{e.reason} (gave up after {failed_tries} tries)")
                await asyncio.sleep(self.backoff.wait(key, failed_tries, e.retry_after))
                continue
            except Permanent as e:
                return _finish(result, started, error=e.reason)
            except ClioError:
                raise  # a setup problem (missing model, bad key) stops the stage with its one-line message
            except Exception as e:  # noqa: BLE001 — one request's crash is recorded, not the whole stage's
                return _finish(result, started, error=f"{type(e).__name__}: {e}"[:300])
            sent = (call.system or "") + "".join(m["content"] for m in call.messages)
            if not done.usage_reported:  # no counts from the server: estimate, so the cost ceiling still holds
                use.usage_estimated += 1
                done = dataclasses.replace(done, prompt_tokens=estimate_tokens(sent),
                                           completion_tokens=estimate_tokens(done.text))
            else:  # counts below zero or below what the text's length allows cannot lower the spend
                p = max(_count(done.prompt_tokens), floor_tokens(sent))
                c = max(_count(done.completion_tokens), floor_tokens(done.text))
                if (p, c) != (done.prompt_tokens, done.completion_tokens):
                    use.usage_estimated += 1
                    done = dataclasses.replace(done, prompt_tokens=p, completion_tokens=c)
            cost = self.prices.cost(self.backend.model, done.prompt_tokens, done.completion_tokens)
            self.spent_usd += cost
            self._spend.add(cost)
            for r in (result, use):
                r.prompt_tokens += done.prompt_tokens
                r.completion_tokens += done.completion_tokens
                r.cost_usd += cost
            if not encodable(done.text):  # a lone surrogate: it cannot be cached or written; fails this request alone
                return _finish(result, started, error=f"{NOT_UNICODE_REPLY}: a lone surrogate in the reply")
            # A plain-text format's reply is cut to max_tokens × MAX_CHARS_PER_TOKEN (16) characters before
            # parsing: no honest answer of max_tokens tokens is longer, and a server ignoring max_tokens (or a
            # model padding with whitespace) must not hand the parser megabytes on the event loop.
            if text_format and len(done.text) > max_tokens * MAX_CHARS_PER_TOKEN:
                done = dataclasses.replace(done, text=done.text[:max_tokens * MAX_CHARS_PER_TOKEN], truncated=True)
            result.text, result.truncated = done.text, done.truncated
            if schema is None:
                use.truncated += done.truncated
                return self._keep(key, _finish(result, started, ok=True))
            try:
                result.parsed = _parse_reply(done.text, done.truncated, request.schema)
                use.truncated += done.truncated
                return self._keep(key, _finish(result, started, ok=True))
            except structured.ParseError as e:
                if done.truncated:
                    return self._keep(key, _finish(result, started, error=f"truncated at max_tokens={max_tokens}: {e}"))
                if reasked:
                    return self._keep(key, _finish(result, started, error=f"malformed structured output after a re-ask: {e}"))
                reasked = True
                use.reasks += 1
                call = Call(system, call.messages + ({"role": "assistant", "content": done.text},
                                                     {"role": "user", "content": structured.reask(str(e), text_format)}),
                            max_tokens, temperature, native, skeleton, answer_format)

    def _keep(self, key: str, result: Result) -> Result:
        """Cache a finished result: one appended log line, written on the event loop (~0.1 ms per call
        measured; a writer thread cost more in handoff and lock contention than the write itself)."""
        self.cache.put(key, result)
        return result


def _count(tokens) -> int:
    """A reported token count as a whole number ≥ 0 (a negative one would lower the spend)."""
    try:
        return max(0, int(tokens))
    except (TypeError, ValueError, OverflowError):
        return 0


def _error_page(text: str) -> bool:
    """An HTML document naming an HTTP error ("<html>502 Bad Gateway</html>"): a proxy answered, not the model."""
    return bool(_ERROR_PAGE.match(text[:200])) and bool(_ERROR_STATUS.search(text[:2000]))


def _finish(result: Result, started: float, *, ok: bool = False, error: str | None = None) -> Result:
    result.ok, result.error = ok, error
    result.latency_s = time.perf_counter() - started
    return result


def _parse_reply(text: str, truncated: bool, schema: Any) -> Any:
    """The reply's value for `schema` (`structured.parse`). A reply cut at max_tokens may stop mid-item on its last
    line: a format that can tell (`whole_part`, a list) parses the part that holds whole items only. Fresh replies
    and cached ones are parsed here alike, so a rerun from the cache reads what the first run read."""
    whole = getattr(schema, "whole_part", None) if truncated and structured.is_text_format(schema) else None
    return structured.parse(whole(text) if whole else text, schema)


def _reparse(hit: Result, schema: Any) -> Result:
    """A cached result with `parsed` rebuilt (a pydantic model cannot live in a JSON file)."""
    if hit.ok and schema is not None:
        try:
            hit.parsed = _parse_reply(hit.text, hit.truncated, schema)
        except structured.ParseError as e:  # the schema's checks changed since: report, do not resend silently
            hit.ok, hit.error = False, f"cached output no longer matches the schema: {e}"
    return hit


def _repeat(first: Result) -> Result:
    """The answer of an identical request earlier in the same batch: the same result, sent and paid once. Its
    parsed object is a copy: a caller editing one request's answer must not change the other's."""
    return dataclasses.replace(first, parsed=copy.deepcopy(first.parsed), prompt_tokens=0, completion_tokens=0,
                               cost_usd=0.0, attempts=0, cached=first.cached or first.ok)


def _run_on_helper_thread(work) -> list[Result]:
    """Run the coroutine `work` on its own event loop in a helper thread, waiting for it here. A
    KeyboardInterrupt (Ctrl-C in a notebook) cancels the work at once — no further request is sent; calls
    already finished stay cached — and is then raised here."""
    box: dict = {}
    started = threading.Event()

    def target():
        loop = asyncio.new_event_loop()
        try:
            box["task"] = loop.create_task(work)
            box["loop"] = loop
            started.set()
            box["value"] = loop.run_until_complete(box["task"])
        except BaseException as e:  # noqa: BLE001 — handed to the caller's thread
            box["error"] = e
        finally:
            started.set()
            loop.close()

    helper = threading.Thread(target=target, name="llm-generate", daemon=True)
    helper.start()
    try:
        while helper.is_alive():
            helper.join(timeout=0.1)  # short waits: the caller's thread stays able to take Ctrl-C
    except BaseException:
        started.wait()
        if "task" in box:
            try:
                box["loop"].call_soon_threadsafe(box["task"].cancel)
            except RuntimeError:  # the loop is closed: the work ended just as the interrupt came
                pass
        helper.join()
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]
