"""Conversations that once crashed the loader or were misread: invalid UTF-8 or lone surrogates inside
messages, odd content-block types, OpenAI refusals and legacy function calls, JSON nested too deeply,
tool-only conversations without user words, Dask's string repr of messages, and Anthropic request logs
with a top-level `system` field. Each ends in a rendered transcript, a row rejected with a reason, or one
`InputError` line naming file, column and row."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clio_engine.conversations import ConversationError, parse
from clio_engine.errors import InputError
from clio_engine.records import load_records

pytestmark = pytest.mark.unit


def _reject_reasons(records) -> dict[str, str]:
    return dict(zip(records.rejected.column("id").to_pylist(), records.rejected.column("reason").to_pylist()))


# ------------------------------------------------------------------------------- invalid UTF-8 (1)


def test_invalid_utf8_inside_jsonl_messages_names_file_column_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id":"a","messages":[{"role":"user","content":"hello"}]}\n\n'
                     b'{"id":"b","messages":[{"role":"user","content":"caf\xe9"}]}\n')
    with pytest.raises(InputError) as e:
        load_records(path)
    assert str(e.value) == (f"cannot read {path}: invalid UTF-8 in column 'messages' at line 3 (row 1); "
                            "re-encode the input as UTF-8")


def test_invalid_utf8_in_a_parquet_json_string_column_names_the_row(tmp_path):
    path = tmp_path / "bad.parquet"
    cells = pa.array([b'[{"role":"user","content":"hi"}]', b'[{"role":"user","content":"caf\xe9"}]'], pa.binary())
    pq.write_table(pa.table({"id": ["a", "b"], "messages": cells.view(pa.string())}), path)
    with pytest.raises(InputError) as e:
        load_records(path)
    assert str(e.value) == (f"cannot read {path}: invalid UTF-8 in column 'messages' at row 1; "
                            "re-encode the input as UTF-8")


def test_invalid_utf8_in_a_nested_parquet_column_names_the_row(tmp_path):
    path = tmp_path / "nested.parquet"
    content = pa.array([b"hi", b"ok", b"caf\xe9"], pa.binary()).view(pa.string())
    messages = pa.StructArray.from_arrays([pa.array(["user"] * 3), content], names=["role", "content"])
    column = pa.ListArray.from_arrays(pa.array([0, 1, 2, 3], pa.int32()), messages)
    pq.write_table(pa.table({"id": ["a", "b", "c"], "messages": column}), path)
    with pytest.raises(InputError) as e:
        load_records(path)
    assert "invalid UTF-8 in column 'messages' at row 2;" in str(e.value) and str(path) in str(e.value)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------- lone surrogates (2)


def test_a_lone_surrogate_in_content_rejects_the_conversation():
    with pytest.raises(ConversationError, match=r"^messages\[1\]\.content is not valid Unicode \(lone surrogate\)$"):
        parse([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "cut emoji \ud83d"}])
    with pytest.raises(ConversationError, match=r"^messages\[0\]\.content\[0\]\.text is not valid Unicode"):
        parse([{"role": "user", "content": [{"type": "text", "text": "x\udc00"}]}])
    with pytest.raises(ConversationError, match=r"^messages\.system is not valid Unicode"):
        parse({"system": "be \ud800 kind", "messages": [{"role": "user", "content": "hi"}]})


def test_a_lone_surrogate_rejects_only_its_row_in_jsonl_and_pandas(tmp_path):
    path = tmp_path / "sur.jsonl"
    path.write_text('{"id":"a","messages":[{"role":"user","content":"hello"}]}\n'
                    '{"id":"b","messages":[{"role":"user","content":"cut emoji \\ud83d"}]}\n')
    frame = pd.DataFrame({"id": ["a", "b"], "messages": [[{"role": "user", "content": "hello"}],
                                                         [{"role": "user", "content": "x\ud800"}]]})
    for source in (path, frame):
        records = load_records(source)
        assert records.ids == ["a"] and records.texts == ["User: hello"]
        assert _reject_reasons(records) == {
            "b": "invalid conversation: messages[0].content is not valid Unicode (lone surrogate)"}


# ------------------------------------------------------------------------- block type not text (3)


@pytest.mark.parametrize("kind, name", [(["text"], "a list"), ({"t": "text"}, "an object"), (5, "a number")])
def test_a_content_block_type_that_is_not_a_string_is_named(kind, name):
    with pytest.raises(ConversationError) as e:
        parse([{"role": "user", "content": [{"type": kind, "text": "hi"}]}])
    assert str(e.value) == f"messages[0].content[0].type is {name}, expected a string"


def test_a_list_block_type_rejects_its_row_in_jsonl(tmp_path):
    path = tmp_path / "typelist.jsonl"
    path.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "hello"}]}) + "\n" +
                    json.dumps({"id": "b", "messages": [{"role": "user", "content": [{"type": ["text"], "text": "hi"}]}]})
                    + "\n")
    records = load_records(path)
    assert records.ids == ["a"]
    assert _reject_reasons(records) == {"b": "invalid conversation: messages[0].content[0].type is a list, expected a string"}


# ------------------------------------------------------------------ OpenAI refusals, function_call (4)


def test_openai_refusals_are_rendered_and_legacy_function_calls_accepted():
    ask = {"role": "user", "content": "how to make a bomb"}
    refusal = ("assistant", "[refusal] I can't help with that.")
    assert parse([ask, {"role": "assistant", "content": None, "refusal": "I can't help with that."}]) == [
        ("user", "how to make a bomb"), refusal]
    assert parse([ask, {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]) == [
        ("user", "how to make a bomb"), refusal]
    assert parse([{"role": "user", "content": "weather?"},
                  {"role": "assistant", "content": None, "function_call": {"name": "w", "arguments": "{}"}}]) == [
        ("user", "weather?"), ("assistant", "[tool call]")]
    with pytest.raises(ConversationError, match=r"^messages\[1\]\.content\[0\]\.refusal is missing$"):
        parse([ask, {"role": "assistant", "content": [{"type": "refusal"}]}])
    with pytest.raises(ConversationError, match=r"^messages\[1\]\.refusal is a number$"):
        parse([ask, {"role": "assistant", "content": None, "refusal": 3}])


def test_tool_calls_read_from_parquet_by_pandas_are_numpy_arrays(tmp_path):
    """pandas reads a nested list as a numpy array, whose truth value is ambiguous past one element."""
    path = tmp_path / "tools.parquet"
    calls = [{"id": "c1", "type": "function"}, {"id": "c2", "type": "function"}]
    pq.write_table(pa.Table.from_pylist([{"id": "a", "messages": [
        {"role": "user", "content": "two lookups", "tool_calls": None},
        {"role": "assistant", "content": None, "tool_calls": calls}]}]), path)
    expected = ["User: two lookups\nAssistant: [tool call]"]
    assert load_records(path).texts == expected
    assert load_records(pd.read_parquet(path)).texts == expected


# ---------------------------------------------------------------------------- nested too deeply (5)


def test_json_nested_too_deeply_rejects_the_row():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ConversationError, match=r"^messages is not valid JSON \(nested too deeply\)$"):
        parse(deep)
    records = load_records(pd.DataFrame({"messages": [json.dumps([{"role": "user", "content": "hi"}]), deep]}))
    assert records.texts == ["User: hi"]
    assert _reject_reasons(records) == {"1": "invalid conversation: messages is not valid JSON (nested too deeply)"}


# ------------------------------------------------------------------------- placeholders are no words (6)


def test_tool_placeholders_do_not_count_as_user_text():
    with pytest.raises(ConversationError, match="^messages has no user message with text$"):
        parse([{"role": "system", "content": "You are an agent"},
               {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
               {"role": "tool", "content": "42"}])
    with pytest.raises(ConversationError, match="^messages has no user message with text$"):
        parse([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}])
    # one user word is enough; the placeholders are still shown
    assert parse([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}, {"type": "text", "text": "go"}]}]) \
        == [("user", "[tool result]\ngo")]


# ------------------------------------------------------------------------------ Dask's repr strings (7)


def test_a_python_repr_cell_gets_an_actionable_hint():
    with pytest.raises(ConversationError) as e:
        parse(str([{"role": "user", "content": "hi"}]))
    assert str(e.value).startswith("messages is not valid JSON (it looks like a Python repr: with Dask, set "
                                   "dask.config.set({'dataframe.convert-string': False})")
    with pytest.raises(ConversationError, match=r"^messages is not valid JSON \(Expecting"):
        parse("[{not json")  # not a repr: the parser's own message


def test_dask_frames_of_messages_load_with_the_suggested_setting():
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    rows = pd.DataFrame({"id": ["a", "b"], "messages": [[{"role": "user", "content": "How do I boil an egg?"}],
                                                        [{"role": "user", "content": "Fix my SQL"}]]})
    with dask.config.set({"dataframe.convert-string": True}):  # Dask's default: lists become their repr
        frame = dd.from_pandas(rows, npartitions=1)
        with pytest.raises(InputError, match=r"it looks like a Python repr: with Dask, set dask\.config\.set"):
            load_records(frame)
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_pandas(rows, npartitions=1)
    assert load_records(frame).texts == ["User: How do I boil an egg?", "User: Fix my SQL"]


# ---------------------------------------------------------------- Anthropic request rows: system (8)


def test_a_system_column_beside_messages_is_rendered_like_the_request_object(tmp_path):
    request = {"system": "You are a pirate.", "messages": [{"role": "user", "content": "hi"}]}
    path = tmp_path / "anthropic.jsonl"
    path.write_text(json.dumps({"id": "a", **request}) + "\n" +
                    json.dumps({"id": "b", "system": None, "messages": request["messages"]}) + "\n" +
                    json.dumps({"id": "c", "system": 5, "messages": request["messages"]}) + "\n")
    records = load_records(path)
    assert records.transcripts() == ["System: You are a pirate.\nUser: hi", "User: hi"]
    assert records.transcripts()[0] == load_records(pd.DataFrame({"messages": [request]})).transcripts()[0]
    assert _reject_reasons(records) == {"c": "invalid conversation: system is a number; expected text or a list "
                                             "of content blocks"}
    # a plain-text input ignores the column; a conversation column of another name reads it as messages does
    assert load_records(pd.DataFrame({"text": ["t"], "system": ["s"]})).texts == ["t"]
    frame = pd.DataFrame({"chat": [request["messages"]], "system": ["s"]})
    assert load_records(frame, conversation_column="chat").transcripts() == ["System: s\nUser: hi"]


def test_request_log_files_need_not_all_have_a_system_column(tmp_path):
    (tmp_path / "1.jsonl").write_text(json.dumps({"id": "a", "system": "S", "messages": [{"role": "user", "content": "hi"}]}))
    (tmp_path / "2.jsonl").write_text(json.dumps({"id": "b", "messages": [{"role": "user", "content": "yo"}]}))
    assert load_records(tmp_path / "*.jsonl").transcripts() == ["System: S\nUser: hi", "User: yo"]
    # asked for as a facet, the column is required in every file as usual
    with pytest.raises(InputError, match="input files disagree on column 'system'"):
        load_records(tmp_path / "*.jsonl", facet_columns=["system"])


# ------------------------------------------------------------------------------- dates as written


def test_date_looking_ids_facets_and_messages_in_jsonl_are_kept_as_written(tmp_path):
    """pyarrow's JSON reader turns "2024-01-01" into a timestamp: ids and facets came back as
    '2024-01-01 00:00:00' and a message saying only a date was rejected as 'a datetime'."""
    rows = [{"id": "2024-01-01", "day": "2024-03-05", "messages": [{"role": "user", "content": "2024-01-02"}]},
            {"id": "2024-01-02", "day": "2024-03-06", "messages": [{"role": "user", "content": "2024-01-04 10:00:00"}]}]
    path = tmp_path / "dates.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # a message that is only a date is read as its string, which has no words: rejected for that, not as a datetime
    rejected = load_records(path, facet_columns=["day"]).rejected
    assert rejected.column("id").to_pylist() == ["2024-01-01", "2024-01-02"]
    assert rejected.column("reason").to_pylist() == ["no words: the text has no letters"] * 2
    for row, text in zip(rows, ["what day is it", "meet at noon"]):
        row["messages"][0]["content"] = f"{row['messages'][0]['content']} {text}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = load_records(path, facet_columns=["day"]).table
    assert table.column("id").to_pylist() == ["2024-01-01", "2024-01-02"]
    assert table.column("day").to_pylist() == ["2024-03-05", "2024-03-06"]
    assert table.column("text").to_pylist() == ["User: 2024-01-02 what day is it", "User: 2024-01-04 10:00:00 meet at noon"]
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "2024-05-01", "text": "hello"}) + "\n" + json.dumps({"id": "x", "text": "hi"}) + "\n")
    assert load_records(plain).table.column("id").to_pylist() == ["2024-05-01", "x"]


def test_a_run_whose_every_row_is_rejected_says_why_and_points_at_the_column(tmp_path):
    """`--text-column messages` on a conversation file rejected every row as 'non-text text (list)', and the run
    then said only 'need at least 2 accepted records to cluster, got 0'."""
    from clio_engine.pipeline import run

    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "messages": [{"role": "user", "content": f"q {i}"}]}) + "\n"
                            for i in range(4)))
    with pytest.raises(InputError) as e:
        run(None, input=str(path), out=tmp_path / "r", overrides={"input.text_column": "messages"})
    message = str(e.value)
    assert message.startswith(f"no row of {path} was accepted: 4 rejected (4 non-text text (list))")
    assert "input.conversation_column: messages" in message and "\n" not in message


def test_messages_written_as_arrow_maps_are_read_like_objects(tmp_path):
    """Spark writes each message as map<string, string>; Arrow gives such a cell as [(key, value), ...],
    which was refused as 'messages[0] is a list, not an object'."""
    path = tmp_path / "map.parquet"
    cells = [[[("role", "user"), ("content", "How do I boil an egg?")], [("role", "assistant"), ("content", "Boil.")]],
             [[("role", "robot"), ("content", "beep")]]]
    pq.write_table(pa.table({"id": ["a", "b"], "messages": pa.array(cells, pa.list_(pa.map_(pa.string(), pa.string())))}),
                   path)
    records = load_records(path)
    assert records.table.column("text").to_pylist() == ["User: How do I boil an egg?\nAssistant: Boil."]
    assert _reject_reasons(records)["b"].startswith("invalid conversation: messages[0].role is 'robot'")


def test_a_text_column_of_serialized_conversations_is_warned_about(tmp_path, caplog):
    """A CSV with JSON messages given as the text column was embedded as raw JSON without a word."""
    path = tmp_path / "c.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "messages": [json.dumps([{"role": "user", "content": f"q {i}"}]) for i in range(3)]}
                 ).to_csv(path, index=False)
    with caplog.at_level("WARNING", logger="clio_engine.records"):
        records = load_records(path, text_column="messages")
    assert len(records) == 3  # still the user's choice: loaded as asked, with the warning
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "holds JSON conversations" in warning and "input.conversation_column: messages" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="clio_engine.records"):
        load_records(pd.DataFrame({"text": ["plain text", "[not a conversation]"]}))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_file_joined_from_openai_and_sharegpt_exports_reads_each_row_from_its_own_column(tmp_path):
    """Concatenated exports give a JSONL file whose rows fill either `messages` or `conversations`; before,
    every ShareGPT row was rejected as "messages is null". Files after the first may hold either column alone."""
    path = tmp_path / "joined.jsonl"
    rows = [{"id": "oa", "messages": [{"role": "user", "content": "hello"}]},
            {"id": "sg", "conversations": [{"from": "human", "value": "a ShareGPT turn"}]},
            {"id": "both", "messages": [{"role": "user", "content": "a"}], "conversations": [{"from": "human", "value": "b"}]},
            {"id": "neither"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = load_records(path)
    assert dict(zip(records.table.column("id").to_pylist(), records.table.column("text").to_pylist())) == {
        "oa": "User: hello", "sg": "User: a ShareGPT turn"}
    assert _reject_reasons(records) == {
        "both": "invalid conversation: both messages and conversations are set; a row holds one conversation",
        "neither": "invalid conversation: messages and conversations are both null"}
    # a later file may hold either column alone
    (tmp_path / "later.jsonl").write_text(json.dumps({"id": "l", "conversations": [{"from": "human", "value": "later"}]}))
    both_files = load_records(tmp_path / "*.jsonl")
    assert both_files.table.column("text").to_pylist() == ["User: hello", "User: a ShareGPT turn", "User: later"]


def test_a_chosen_conversation_column_is_read_alone(tmp_path):
    path = tmp_path / "joined.jsonl"
    path.write_text(json.dumps({"id": "sg", "conversations": [{"from": "human", "value": "x"}]}) + "\n"
                    + json.dumps({"id": "oa", "messages": [{"role": "user", "content": "y"}]}) + "\n")
    records = load_records(path, conversation_column="messages")
    assert records.table.column("id").to_pylist() == ["oa"]
    assert _reject_reasons(records) == {"sg": "invalid conversation: messages is null"}


def test_conversation_rows_in_a_file_read_as_texts_are_rejected_and_warned_about(tmp_path, caplog):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"id": "t", "text": "plain request"}) + "\n"
                    + json.dumps({"id": "m", "messages": [{"role": "user", "content": "a conversation"}]}) + "\n")
    with caplog.at_level("WARNING", logger="clio_engine.records"):
        records = load_records(path)
    assert records.table.column("id").to_pylist() == ["t"] and _reject_reasons(records) == {"m": "null text"}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "1 rows" in warning and "'messages'" in warning and "input.conversation_column: messages" in warning


def test_missing_cells_of_nullable_string_columns_count_as_missing():
    """pandas' "string" dtype gives pd.NA for a missing cell: every joined row counted as filling both
    conversation columns (the whole frame refused), and a missing system prompt rejected its row."""
    openai = json.dumps([{"role": "user", "content": "hello"}])
    sharegpt = json.dumps([{"from": "human", "value": "hi"}])
    joined = pd.DataFrame({"messages": [openai, None], "conversations": [None, sharegpt]}).astype("string")
    assert load_records(joined).texts == ["User: hello", "User: hi"]
    logs = pd.DataFrame({"messages": [openai, openai], "system": ["be brief", None]}).astype("string")
    assert load_records(logs).transcripts() == ["System: be brief\nUser: hello", "User: hello"]


def test_a_system_or_sharegpt_column_only_in_a_later_file_is_read(tmp_path):
    """Only the first file's columns were looked at: a system prompt or ShareGPT rows in the second file
    were dropped or rejected, depending on how the files happened to sort."""
    (tmp_path / "1.jsonl").write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "hi"}]}))
    (tmp_path / "2.jsonl").write_text(json.dumps({"id": "b", "system": "S", "messages": [{"role": "user", "content": "yo"}]})
                                      + "\n" + json.dumps({"id": "c", "conversations": [{"from": "human", "value": "hey"}]}))
    records = load_records(tmp_path / "*.jsonl")
    assert records.transcripts() == ["User: hi", "System: S\nUser: yo", "User: hey"] and records.rejected.num_rows == 0


def test_no_warning_points_a_conversation_text_column_at_itself(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text('id,messages\na,\nb,"[{""role"": ""user"", ""content"": ""hi""}]"\n')
    with caplog.at_level("WARNING", logger="clio_engine.records"):
        load_records(path, text_column="messages")
    assert not [r for r in caplog.records if "also has" in r.getMessage()]


def test_a_misspelt_or_capitalised_text_block_is_read_or_rejected_never_skipped():
    """Review: {"type": "Text"} and {"type": "txt"} blocks were skipped with their words (roles already
    ignore case); a block of another kind without text (an image) is still skipped."""
    rows = [{"id": "case", "messages": [{"role": "user", "content": [{"type": "text", "text": "one"},
                                                                     {"type": "Text", "text": "two"}]}]},
            {"id": "typo", "messages": [{"role": "user", "content": [{"type": "text", "text": "one"},
                                                                     {"type": "txt", "text": "lost"}]}]},
            {"id": "image", "messages": [{"role": "user", "content": [{"type": "text", "text": "see"},
                                                                      {"type": "image", "source": {"data": "x"}}]}]}]
    r = load_records(rows)
    assert dict(zip(r.table.column("id").to_pylist(), r.texts)) == {"case": "User: one\ntwo", "image": "User: see"}
    assert "messages[0].content[1].type is 'txt'" in _reject_reasons(r)["typo"]


def test_a_system_column_is_read_beside_a_conversation_column_of_any_name():
    """Review: with input.conversation_column: chat, the system column beside it was silently left out."""
    conv = [{"role": "user", "content": "hello"}]
    named = load_records([{"system": "You are a pirate", "chat": conv}], conversation_column="chat")
    default = load_records([{"system": "You are a pirate", "messages": conv}])
    assert named.transcripts() == default.transcripts() == ["System: You are a pirate\nUser: hello"]


def test_a_key_repeated_in_one_json_object_is_named_not_silently_the_last(tmp_path):
    """Review: pyarrow refuses {"text": "a", "text": "b"} and the Python reader then kept "b" without a word;
    a conversation cell's message with two "content" keys kept the last."""
    path = tmp_path / "dup.jsonl"
    path.write_text('{"text": "a", "id": 1}\n{"text": "b", "text": "c", "id": 2}\n')
    with pytest.raises(InputError, match="dup.jsonl as jsonl: line 2: the key 'text' appears twice in one object"):
        load_records(path)
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"messages": [{"role": "user", "content": "a", "content": "b"}]}\n')
    with pytest.raises(InputError, match="line 1: the key 'content' appears twice"):
        load_records(nested)
    cells = pd.DataFrame({"chat": ['[{"role": "user", "content": "a", "content": "b"}]', '[{"role": "user", "content": "ok"}]']})
    r = load_records(cells, conversation_column="chat")
    assert r.texts == ["User: ok"]
    assert _reject_reasons(r) == {"0": "invalid conversation: chat: the key 'content' appears twice in one object"}


def test_a_system_prompt_is_kept_beside_the_text_never_in_what_is_clustered_named_or_shown(tmp_path):
    """Review: a request log's system prompt was rendered first into every record's text. A 300-word prompt filled
    the embedder's 256 tokens, so every record embedded alike and the run made one cluster named after the
    prompt; a short one opened every published example. It is the deployer's text: the record's text is the
    conversation; facet extraction reads both."""
    prompt = "You are a helpful banking assistant for Acme Bank. Always be polite and concise. " * 12
    rows = [{"id": f"c{i}", "system": prompt, "messages": [{"role": "system", "content": "be nice"},
                                                          {"role": "user", "content": ask},
                                                          {"role": "assistant", "content": "ok"}]}
            for i, ask in enumerate(["set an alarm for 7 am", "what is the weather in paris"])]
    records = load_records(rows)
    assert records.texts == ["User: set an alarm for 7 am\nAssistant: ok", "User: what is the weather in paris\nAssistant: ok"]
    assert records.system_prompts == [f"System: {prompt.strip()}\nSystem: be nice"] * 2
    assert records.transcripts()[0] == f"System: {prompt.strip()}\nSystem: be nice\nUser: set an alarm for 7 am\nAssistant: ok"
    assert records.facet_columns == []  # the prompts are no facet
    assert load_records(pd.DataFrame({"text": ["t"]})).system_prompts == [None]  # plain texts have none
