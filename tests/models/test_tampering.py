"""A tamper corpus: damaged copies of saved Pop, SASRec, CLLM4Rec and CALRec folders. Each is a
ModelFormatError naming the file from `llmrec.load`, and through the console entry point one line
on stderr, exit code 2, no traceback, for `llmrec recommend` and `llmrec serve` alike."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import llmrec
from llmrec.data.catalogue import Catalogue, Item
from llmrec.errors import ModelFormatError
from llmrec.models.calrec.model import CALRec, CALRecConfig
from llmrec.models.cllm4rec.config import CLLM4RecConfig
from llmrec.models.cllm4rec.model import CLLM4Rec
from llmrec.models.pop import PopConfig, Popularity
from llmrec.models.sasrec import SASRec, SASRecConfig

WEIGHTS, CONFIG, ITEMS = "model.safetensors", "config.json", "items.jsonl"
TABLES, USERS, IDENTITY = "id_tables.safetensors", "users.json", "backbone_identity.json"
USER_IDS = ["u0", "u1", "u2"]
SMALL, LLM = ("pop", "sasrec"), ("cllm4rec", "calrec")
EVERY = SMALL + LLM


def _catalogue() -> Catalogue:
    return Catalogue.from_items(
        Item(f"i{j}", title=f"widget {j}", categories=("tools",), brand=f"b{j % 3}", price=1.5)
        for j in range(12)
    )


def _llm(config_class, cache: Path, **fields):
    return config_class.model_validate(
        {"backbone": {"source": "tiny", "cache_dir": str(cache)}, **fields}
    )


def _save_pop(folder: Path, cache: Path) -> None:
    model = Popularity(PopConfig(), _catalogue())
    model.fit([np.array([0, 1, 1, 2])])
    model.save(folder)


def _save_sasrec(folder: Path, cache: Path) -> None:
    torch.manual_seed(0)
    config = SASRecConfig(hidden_size=16, num_layers=1, num_heads=1, max_length=10)
    SASRec(config, _catalogue()).save(folder)


def _save_cllm4rec(folder: Path, cache: Path) -> None:
    config = _llm(CLLM4RecConfig, cache, pretrain={"warmup_epochs": 0, "rounds": 0})
    model = CLLM4Rec(config, _catalogue())
    model._build(USER_IDS, config.backbone, show_progress=False)
    model.save(folder)


def _save_calrec(folder: Path, cache: Path) -> None:
    text = {"fields": ["title"], "max_history_items": 3, "max_item_tokens": 8}
    CALRec(_llm(CALRecConfig, cache, text=text), _catalogue()).save(folder)


SAVERS = {"pop": _save_pop, "sasrec": _save_sasrec, "cllm4rec": _save_cllm4rec}
SAVERS["calrec"] = _save_calrec


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, llm_cache_dir: Path) -> Callable[[str], Path]:
    """The pristine saved folder of a model kind, built on first use."""
    folders: dict[str, Path] = {}

    def folder_of(kind: str) -> Path:
        if kind not in folders:
            folders[kind] = tmp_path_factory.mktemp(kind) / "model"
            SAVERS[kind](folders[kind], llm_cache_dir)
        return folders[kind]

    return folder_of


# --- tampering ---------------------------------------------------------------------------------
def _edit_json(name: str, edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        data = json.loads((folder / name).read_text(encoding="utf-8"))
        edit(data)
        (folder / name).write_text(json.dumps(data), encoding="utf-8")

    return tamper


def _edit_model_config(**fields) -> Callable[[Path], None]:
    return _edit_json(CONFIG, lambda meta: meta["config"].update(fields))


def _write(name: str, content: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(content)


def _truncate(name: str) -> Callable[[Path], None]:
    return lambda folder: _write(name, (folder / name).read_bytes()[:-40])(folder)


def _remove(name: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return tamper


def _edit_tensors(name: str, edit: Callable[[dict[str, torch.Tensor]], None]):
    def tamper(folder: Path) -> None:
        tensors = load_file(str(folder / name))
        edit(tensors)
        save_file({key: value.contiguous() for key, value in tensors.items()}, str(folder / name))

    return tamper


def _first(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(tensors)[0]


def _set_first_value(value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        tensors[_first(tensors)].view(-1)[0] = value

    return edit


def _grow_first(tensors: dict[str, torch.Tensor]) -> None:
    name = _first(tensors)
    tensors[name] = torch.cat([tensors[name], tensors[name][:1]])


def _edit_items_line(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        lines = (folder / ITEMS).read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[0])
        edit(record)
        lines[0] = json.dumps(record)  # NaN is written as a bare NaN, as Python's json does
        (folder / ITEMS).write_text("\n".join(lines) + "\n", encoding="utf-8")

    return tamper


def _drop_last_item(folder: Path) -> None:
    lines = (folder / ITEMS).read_bytes().splitlines(keepends=True)
    (folder / ITEMS).write_bytes(b"".join(lines[:-1]))


def _switch_kind(meta: dict) -> None:
    meta["model"] = "sasrec" if meta["model"] == "pop" else "pop"


def _switch_kind_and_config(meta: dict) -> None:
    _switch_kind(meta)
    meta["config"] = {"name": meta["model"]}


def _interrupted_first_save(folder: Path) -> None:
    """What a kill while a first save writes leaves: only a partial FOLDER.tmp."""
    (folder / WEIGHTS).unlink(missing_ok=True)
    folder.rename(folder.with_name(folder.name + ".tmp"))


def _bm25_nan(folder: Path) -> None:
    scores = folder / "bm25" / "data.csc.index.npy"
    data = np.load(scores)
    data[0] = np.nan
    np.save(scores, data)


@dataclass(frozen=True)
class Case:
    name: str
    kinds: tuple[str, ...]
    tamper: Callable[[Path], None]
    match: str  # in the message: the file at fault and the problem


CASES = [
    Case("weights-missing", SMALL, _remove(WEIGHTS), r"model\.safetensors: missing"),
    Case("weights-truncated", SMALL, _truncate(WEIGHTS), r"model\.safetensors: not a readable"),
    Case("weights-garbage", SMALL, _write(WEIGHTS, b"\x89junk" * 200), r"safetensors: not a read"),
    Case("weights-empty", SMALL, _write(WEIGHTS, b""), r"model\.safetensors: not a readable"),
    Case(
        "tensor-wrong-shape",
        SMALL,
        _edit_tensors(WEIGHTS, _grow_first),
        r"model\.safetensors: tensor .* has shape",
    ),
    Case(
        "tensor-missing",
        SMALL,
        _edit_tensors(WEIGHTS, lambda t: t.pop(_first(t))),
        r"model\.safetensors: tensors do not match the model: missing \w",
    ),
    Case(
        "tensor-extra",
        SMALL,
        _edit_tensors(WEIGHTS, lambda t: t.update(intruder=torch.zeros(2))),
        r"model\.safetensors: .*unexpected intruder",
    ),
    Case(
        "weights-nan",
        SMALL,
        _edit_tensors(WEIGHTS, _set_first_value(float("nan"))),
        r"model\.safetensors: tensor .* NaN or infinite",
    ),
    Case(
        "weights-infinite",
        SMALL,
        _edit_tensors(WEIGHTS, _set_first_value(float("inf"))),
        r"model\.safetensors: tensor .* NaN or infinite",
    ),
    Case(
        "weights-wrong-dtype",
        SMALL,
        _edit_tensors(WEIGHTS, lambda t: t.update({_first(t): t[_first(t)].double()})),
        r"model\.safetensors: tensor .* is torch\.float64",
    ),
    Case("config-missing", EVERY, _remove(CONFIG), r"config\.json is missing"),
    Case("config-not-utf8", EVERY, _write(CONFIG, b'{"model": "\xff"}'), r"json: not UTF-8"),
    Case("config-a-list", EVERY, _write(CONFIG, b"[]"), r"json: expected an object, found an ar"),
    Case("config-truncated", EVERY, _truncate(CONFIG), r"config\.json: not valid JSON"),
    Case(
        "config-nested-deeply",
        SMALL,
        _write(CONFIG, b"[" * 100_000 + b"]" * 100_000),
        r"config\.json: not valid JSON \(nested too deeply\)",
    ),
    Case(
        "config-huge-integer",
        SMALL,
        _write(CONFIG, b'{"catalogue_size": ' + b"9" * 5000 + b"}"),
        r"config\.json: not valid JSON",
    ),
    Case(
        "model-kind-switched",
        SMALL,
        _edit_json(CONFIG, _switch_kind),
        r"config\.json: 'model' says .* but 'config' is for",
    ),
    Case(
        "model-kind-and-config-switched",
        SMALL,
        _edit_json(CONFIG, _switch_kind_and_config),
        r"model\.safetensors: tensors do not match the model",
    ),
    Case(
        "model-kind-unknown",
        EVERY,
        _edit_json(CONFIG, lambda meta: meta.update(model="gpt-9")),
        r"config\.json: unknown model 'gpt-9'",
    ),
    Case(
        "config-unknown-field",
        EVERY,
        _edit_model_config(turbo=True),
        r"config\.json: invalid model config: turbo: Extra inputs",
    ),
    Case(
        "hidden-size-huge",
        ("sasrec",),
        _edit_model_config(hidden_size=16_777_216),
        r"model\.safetensors: tensor .* has shape \[13, 16\], .* needs \[13, 16777216\]",
    ),
    Case(
        "catalogue-fingerprint-missing",
        EVERY,
        _edit_json(CONFIG, lambda meta: meta.pop("catalogue_sha256")),
        r"config\.json: the key 'catalogue_sha256' must hold a string",
    ),
    Case("items-missing", EVERY, _remove(ITEMS), r"items\.jsonl: missing"),
    Case("items-not-utf8", EVERY, _write(ITEMS, b'{"index": 0, "item_id": "\xff"}\n'), "UTF-8"),
    Case(
        "items-categories-a-string",
        EVERY,
        _edit_items_line(lambda item: item.update(categories="Beauty")),
        r"items\.jsonl, line 1, field 'categories': expected a list of strings",
    ),
    Case(
        "items-price-nan",
        SMALL,
        _edit_items_line(lambda item: item.update(price=float("nan"))),
        r"items\.jsonl, line 1, field 'price': expected a finite number",
    ),
    Case(
        "items-id-changed",
        SMALL,
        _edit_items_line(lambda item: item.update(item_id="someone-else")),
        r"items\.jsonl: does not match the catalogue in config\.json",
    ),
    Case(
        "items-row-dropped",
        SMALL,
        _drop_last_item,
        r"items\.jsonl: does not match the catalogue",
    ),
    Case(
        "save-interrupted-while-writing",
        SMALL,
        _interrupted_first_save,
        r"only model\.tmp, the partial copy of a save that was interrupted",
    ),
    # CLLM4Rec: ID tables beside a frozen backbone rebuilt from its source
    Case("tables-garbage", ("cllm4rec",), _write(TABLES, b"junk"), r"id_tables\.safetensors: not"),
    Case(
        "tables-nan",
        ("cllm4rec",),
        _edit_tensors(TABLES, _set_first_value(float("nan"))),
        r"id_tables\.safetensors: tensor 'items\.collaborative' holds NaN",
    ),
    Case(
        "tables-wrong-shape",
        ("cllm4rec",),
        _edit_tensors(TABLES, _grow_first),
        r"id_tables\.safetensors: tensor 'items\.collaborative' has shape",
    ),
    Case(
        "users-not-a-list", ("cllm4rec",), _write(USERS, b'{"u0": 0}'), r"users\.json: expected an"
    ),
    Case(
        "users-one-more",
        ("cllm4rec",),
        _write(USERS, json.dumps([*USER_IDS, "u3"]).encode()),
        r"users\.json: lists 4 users, but the user tables .* hold 4 rows",
    ),
    Case(
        "users-repeated", ("cllm4rec",), _write(USERS, b'["u0", "u0", "u1"]'), r"users\.json: exp"
    ),
    Case("identity-not-utf8", LLM, _write(IDENTITY, b"\xff\xfe"), r"identity\.json: not UTF-8"),
    # CALRec: its finetuned backbone and BM25 index live in the folder
    Case("backbone-missing", ("calrec",), _remove("backbone"), r"backbone: missing"),
    Case(
        "backbone-garbage",
        ("calrec",),
        _write("backbone/model.safetensors", b"junk" * 50),
        r"backbone/model\.safetensors: not a readable safetensors file",
    ),
    Case(
        "backbone-nan",
        ("calrec",),
        _edit_tensors("backbone/model.safetensors", _set_first_value(float("nan"))),
        r"backbone: tensor 'model\.embed_tokens\.weight' holds NaN",
    ),
    Case(
        "backbone-hidden-size-huge",
        ("calrec",),
        _edit_json("backbone/config.json", lambda config: config.update(hidden_size=16_777_216)),
        r"backbone/model\.safetensors: tensor .* has shape",
    ),
    Case("bm25-missing", ("calrec",), _remove("bm25"), r"bm25: missing"),
    Case("bm25-nan", ("calrec",), _bm25_nan, r"bm25: not a readable BM25 index \(scores hold NaN"),
]
PARAMS = [
    pytest.param(kind, case, id=f"{kind}-{case.name}") for case in CASES for kind in case.kinds
]


def test_the_corpus_has_at_least_twenty_kinds_of_damage_for_pop_sasrec_and_an_llm() -> None:
    for kind in ("pop", "sasrec", "cllm4rec", "calrec"):
        assert sum(kind in case.kinds for case in CASES) >= (20 if kind in SMALL else 10), kind
    assert len(CASES) >= 40


@pytest.mark.parametrize("kind", EVERY)
def test_the_pristine_folders_load(saved, kind: str) -> None:
    assert type(llmrec.load(saved(kind), device="cpu")).name == kind


def _damaged(saved, kind: str, case: Case, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved(kind), folder)
    case.tamper(folder)
    return folder


def _console(monkeypatch, capsys, *arguments: str) -> tuple[int, str]:
    """Run the `llmrec` console entry point in-process: (exit code, stderr)."""
    from llmrec.cli.main import entry

    monkeypatch.setattr(sys, "argv", ["llmrec", *arguments])
    with pytest.raises(SystemExit) as exited:
        entry()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(("kind", "case"), PARAMS)
def test_damage_is_a_model_format_error_and_one_line_exit_2_on_the_command_line(
    saved, kind: str, case: Case, tmp_path: Path, monkeypatch, capsys
) -> None:
    folder = _damaged(saved, kind, case, tmp_path)
    with pytest.raises(ModelFormatError, match=case.match):
        llmrec.load(folder, device="cpu")
    capsys.readouterr()
    code, stderr = _console(monkeypatch, capsys, "recommend", str(folder), "--device", "cpu")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr and str(tmp_path) in stderr


@pytest.mark.parametrize("name", ["weights-nan", "model-kind-switched", "items-not-utf8"])
def test_serve_refuses_to_start_on_a_damaged_folder(
    saved, name: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    import uvicorn

    def started(*args, **kwargs) -> None:
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", started)
    case = next(case for case in CASES if case.name == name)
    folder = _damaged(saved, "sasrec", case, tmp_path)
    code, stderr = _console(monkeypatch, capsys, "serve", str(folder), "--device", "cpu")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert str(folder) in stderr


def test_hidden_size_huge_is_refused_before_any_allocation(saved, tmp_path, monkeypatch) -> None:
    """The skeleton is built on the meta device: building the real network would fail here."""
    case = next(case for case in CASES if case.name == "hidden-size-huge")
    folder = _damaged(saved, "sasrec", case, tmp_path)
    build = SASRec.new_network

    def on_meta_only(self: SASRec):
        assert torch.empty(0).device.type == "meta", "a network of the huge size was allocated"
        return build(self)

    monkeypatch.setattr(SASRec, "new_network", on_meta_only)
    with pytest.raises(ModelFormatError, match="16777216"):
        llmrec.load(folder, device="cpu")
