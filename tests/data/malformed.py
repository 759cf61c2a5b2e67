"""Malformed copies of the shipped fixture: one case per kind of bad input (docs/data.md, sec. 7).

The bases are the first 60 users of data/amazon-beauty-mini (small, so ~130 cases load in
seconds) with the unchanged items.jsonl rows of the items they touch: in P5 format as shipped,
and converted to bring-your-own JSONL and CSV, RecBole atomic, UniSRec and DEALRec files. A case
damages one copy of a base and says where the error must point: the file, the 1-based line (None
where the problem has no line, e.g. an empty file) and what `--skip-bad` counts (None where the
load must still fail, naming the file). `CASES` lists them; `build_case` writes one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.data.helpers import FIXTURE_DIR, write_jsonl, write_lines, write_unisrec_folder

Damage = Callable[[Path], None]

NUM_USERS = 60
BASES = ("p5", "byo-jsonl", "byo-csv", "recbole", "unisrec", "dealrec")
UNISREC_PREFIX = "Beauty"
RECBOLE_ITEM_HEADER = (
    "item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\tprice:float"
)
DEEP = "[" * 100_000  # deeper than any recursion limit
DIGITS_5000 = "1" * 5000  # over Python's 4,300-digit limit for int <-> str


@dataclass(frozen=True)
class Case:
    """One malformed folder: its base, how it is damaged and where the error must point."""

    case_id: str
    base: str
    damage: Damage
    file: str
    line: int | None
    skip: str | None  # the problem kind --skip-bad counts; None: still an error naming `file`


# --- the bases ---------------------------------------------------------------------------------


def _fixture() -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The raw items.jsonl lines and (user, items) of the first NUM_USERS users."""
    sequence_text = (FIXTURE_DIR / "user_sequence.txt").read_text(encoding="utf-8")
    lines = sequence_text.splitlines()[:NUM_USERS]
    users = [(line.split()[0], line.split()[1:]) for line in lines]
    touched = {item for _, sequence in users for item in sequence}
    items_text = (FIXTURE_DIR / "items.jsonl").read_text(encoding="utf-8")
    items = [line for line in items_text.splitlines() if json.loads(line)["item_id"] in touched]
    return items, users


def _interactions(users: list[tuple[str, list[str]]]) -> list[tuple[str, str, int]]:
    """(user, item, timestamp) in file order, timestamps increasing within each user."""
    return [
        (user, item, 1_600_000_000 + 86_400 * position)
        for user, sequence in users
        for position, item in enumerate(sequence)
    ]


def _write_byo(folder: Path, items: list[dict], users: list[tuple[str, list[str]]], csv: bool):
    write_jsonl(folder / "items.jsonl", items)
    rows = _interactions(users)
    if csv:
        lines = [f"{user},{item},{time}" for user, item, time in rows]
        write_lines(folder / "interactions.csv", ["user,item,timestamp", *lines])
    else:
        records = [{"user": user, "item": item, "timestamp": time} for user, item, time in rows]
        write_jsonl(folder / "interactions.jsonl", records)


def _one_line(text: str) -> str:
    """Text for a tab-separated field: two fixture titles hold a tab or a newline."""
    return " ".join(text.split())


def _write_recbole(folder: Path, items: list[dict], users: list[tuple[str, list[str]]]) -> None:
    inter = [f"{user}\t{item}\t{time}" for user, item, time in _interactions(users)]
    write_lines(folder / "beauty.inter", ["user_id:token\titem_id:token\ttimestamp:float", *inter])
    rows = []
    for item in items:
        categories = " ".join(name.replace(" ", "_") for name in item["categories"])
        title = _one_line(item["title"])
        rows.append(f"{item['item_id']}\t{title}\t{categories}\t{item['brand'] or ''}\t")
    write_lines(folder / "beauty.item", [RECBOLE_ITEM_HEADER, *rows])


def _write_unisrec(folder: Path, items: list[dict], users: list[tuple[str, list[str]]]) -> None:
    item_ids = [item["item_id"] for item in items]
    index_of = {item_id: index for index, item_id in enumerate(item_ids)}
    texts = [
        (item["item_id"], _one_line(f"{item['title']}. {' '.join(item['categories'])}."))
        for item in items
    ]
    write_unisrec_folder(
        folder,
        UNISREC_PREFIX,
        item_ids=item_ids,
        user_ids=[user for user, _ in users],
        texts=texts,
        whole={
            str(n): [index_of[item] for item in sequence] for n, (_, sequence) in enumerate(users)
        },
        max_length=50,
    )


def _write_dealrec(folder: Path, items: list[dict], users: list[tuple[str, list[str]]]) -> None:
    write_jsonl(
        folder / "items.jsonl", [{**item, "seq_item_id": n + 1} for n, item in enumerate(items)]
    )
    number = {item["item_id"]: str(n + 1) for n, item in enumerate(items)}
    parts = {"train": (None, -2), "valid": (-2, -1), "test": (-1, None)}
    for split, (start, end) in parts.items():
        lines = [
            " ".join([user, *(number[item] for item in seq[start:end])]) for user, seq in users
        ]
        write_lines(folder / f"sequential_{split}.txt", lines)


def write_base(base: str, folder: Path) -> Path:
    """The fixture's first NUM_USERS users written in format `base` into `folder`."""
    lines, users = _fixture()
    if base == "p5":
        write_lines(folder / "items.jsonl", lines)
        write_lines(folder / "user_sequence.txt", (" ".join([u, *seq]) for u, seq in users))
        return folder
    items = [json.loads(line) for line in lines]
    if base in ("byo-jsonl", "byo-csv"):
        _write_byo(folder, items, users, csv=base == "byo-csv")
    elif base == "recbole":
        _write_recbole(folder, items, users)
    elif base == "unisrec":
        _write_unisrec(folder, items, users)
    else:
        _write_dealrec(folder, items, users)
    return folder


def build_case(case: Case, bases: Path, root: Path) -> Path:
    """A damaged copy, under `root`, of the base folder `bases/<base>`."""
    folder = root / case.case_id
    shutil.copytree(bases / case.base, folder)
    case.damage(folder)
    return folder


# --- damage --------------------------------------------------------------------------------------


def _edit_lines(path: Path, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    lines = path.read_bytes().split(b"\n")[:-1]  # every base file ends with a newline
    path.write_bytes(b"".join(line + b"\n" for line in edit(lines)))


def replace(file: str, line: int, text: str | bytes) -> Damage:
    """Line `line` (1-based) of `file` becomes `text` (bytes: possibly not UTF-8)."""
    data = text if isinstance(text, bytes) else text.encode("utf-8")

    def damage(folder: Path) -> None:
        _edit_lines(folder / file, lambda lines: [*lines[: line - 1], data, *lines[line:]])

    return damage


def set_json(file: str, line: int, key: str, raw: str | None) -> Damage:
    """In JSON line `line` of `file`, `key` becomes the raw JSON text `raw` (None: removed)."""
    marker = "\u0000raw\u0000"

    def damage(folder: Path) -> None:
        path = folder / file
        record = json.loads(path.read_bytes().split(b"\n")[line - 1])
        record.pop(key, None)
        if raw is not None:
            record[key] = marker
        text = json.dumps(record).replace(json.dumps(marker), raw or "")
        replace(file, line, text)(folder)

    return damage


def copy_line(file: str, source: int, target: int) -> Damage:
    """Line `target` of `file` becomes a copy of line `source` (a repeated id)."""

    def damage(folder: Path) -> None:
        _edit_lines(
            folder / file, lambda lines: [*lines[: target - 1], lines[source - 1], *lines[target:]]
        )

    return damage


def overwrite(file: str, text: str) -> Damage:
    def damage(folder: Path) -> None:
        (folder / file).write_text(text, encoding="utf-8")

    return damage


def keep_lines(file: str, count: int) -> Damage:
    """Keep only the first `count` lines of `file` (1: a header alone)."""

    def damage(folder: Path) -> None:
        _edit_lines(folder / file, lambda lines: lines[:count])

    return damage


def change_lines(
    file: str, change: Callable[[bytes], bytes], *, first: int = 1, last: int | None = None
) -> Damage:
    """Apply `change` to lines `first` to `last` (1-based, inclusive; None: to the end)."""

    def edit(lines: list[bytes]) -> list[bytes]:
        end = len(lines) if last is None else last
        changed = [change(line) for line in lines[first - 1 : end]]
        return [*lines[: first - 1], *changed, *lines[end:]]

    def damage(folder: Path) -> None:
        _edit_lines(folder / file, edit)

    return damage


def all_of(*damages: Damage) -> Damage:
    def damage(folder: Path) -> None:
        for one in damages:
            one(folder)

    return damage


def _first_tokens(count: int) -> Callable[[bytes], bytes]:
    return lambda line: b" ".join(line.split()[:count])


def with_field(position: int, value: str, separator: str) -> Callable[[bytes], bytes]:
    """A line change: field `position` (0-based) of a `separator`-separated line becomes `value`."""

    def change(line: bytes) -> bytes:
        fields = line.split(separator.encode())
        fields[position] = value.encode("utf-8")
        return separator.encode().join(fields)

    return change


def set_field(file: str, line: int, position: int, value: str, separator: str = "\t") -> Damage:
    return change_lines(file, with_field(position, value, separator), first=line, last=line)


# --- the cases -----------------------------------------------------------------------------------

ITEMS = "items.jsonl"
SEQUENCES = "user_sequence.txt"
JSONL = "interactions.jsonl"
CSV = "interactions.csv"
INTER = "beauty.inter"
ITEM = "beauty.item"
UNI = UNISREC_PREFIX


def _p5_cases() -> list[Case]:
    def item(case_id: str, line: int, key: str, raw: str | None, kind: str = "bad_value") -> Case:
        return Case(f"p5-{case_id}", "p5", set_json(ITEMS, line, key, raw), ITEMS, line, kind)

    def raw_line(case_id: str, file: str, line: int, text: str | bytes, kind: str) -> Case:
        return Case(f"p5-{case_id}", "p5", replace(file, line, text), file, line, kind)

    return [
        raw_line("items-not-json", ITEMS, 3, '{"item_id": "X", ', "malformed_line"),
        raw_line("items-not-an-object", ITEMS, 4, "[1, 2]", "malformed_line"),
        raw_line("items-deeply-nested", ITEMS, 5, DEEP, "malformed_line"),
        item("deeply-nested-field", 6, "category_paths", DEEP, "malformed_line"),
        item("integer-over-4300-digits", 7, "p5_item_id", DIGITS_5000, "malformed_line"),
        item("title-lone-surrogate", 8, "title", '"Rose \\ud800 cream"'),
        item("brand-lone-surrogate", 9, "brand", '"\\udfff"'),
        item("category-lone-surrogate", 10, "categories", '["Beauty", "\\ud83d"]'),
        item("item-id-lone-surrogate", 11, "item_id", '"\\udc00X"'),
        item("description-lone-surrogate", 12, "description", '"\\ud800"'),
        item("price-nan", 13, "price", "NaN"),
        item("price-infinity", 14, "price", "Infinity"),
        item("price-minus-infinity", 15, "price", "-Infinity"),
        item("price-huge-integer", 16, "price", "1" + "0" * 400),
        item("price-over-2-53", 17, "price", "100000000000000000000"),
        item("price-huge-float", 18, "price", "1e400"),
        item("price-negative", 19, "price", "-5"),
        item("price-string", 20, "price", '"12.50"'),
        item("price-boolean", 21, "price", "true"),
        item("categories-string", 22, "categories", '"Beauty"'),
        item("categories-nested", 23, "categories", '[["Beauty"]]'),
        item("title-number", 24, "title", "42"),
        item("brand-object", 25, "brand", '{"name": "Acme"}'),
        item("item-id-missing", 26, "item_id", None),
        item("item-id-boolean", 27, "item_id", "false"),
        item("item-id-empty", 28, "item_id", '""'),
        Case(
            "p5-item-duplicate",
            "p5",
            copy_line(ITEMS, 1, 29),
            ITEMS,
            29,
            "duplicate_item",
        ),
        raw_line("items-not-utf8", ITEMS, 30, b'{"item_id": "X\xff"}', "bad_encoding"),
        raw_line("sequence-not-utf8", SEQUENCES, 3, b"A3G6X \xe9", "bad_encoding"),
        raw_line(
            "sequence-unknown-item",
            SEQUENCES,
            4,
            "A1OA7ZKRQH98C8 B000TZJVBK NOPE X Y",
            "unknown_item",
        ),
        Case(
            "p5-sequence-duplicate-user",
            "p5",
            copy_line(SEQUENCES, 2, 6),
            SEQUENCES,
            6,
            "duplicate_user",
        ),
        raw_line("sequence-user-without-items", SEQUENCES, 7, "LONELY", "empty_sequence"),
        raw_line("sequence-too-short", SEQUENCES, 8, "SHORT B005CRJUEI B00004TMFE", "too_short"),
        Case("p5-sequence-file-empty", "p5", overwrite(SEQUENCES, ""), SEQUENCES, None, None),
        Case(
            "p5-sequence-file-blank", "p5", overwrite(SEQUENCES, "\n \n\t\n"), SEQUENCES, None, None
        ),
        Case("p5-items-file-empty", "p5", overwrite(ITEMS, ""), ITEMS, None, None),
        Case(
            "p5-items-file-missing",
            "p5",
            lambda folder: (folder / ITEMS).unlink(),
            ITEMS,
            None,
            None,
        ),
        Case(
            "p5-skip-bad-drops-every-user",
            "p5",
            change_lines(SEQUENCES, _first_tokens(3)),
            SEQUENCES,
            1,
            None,
        ),
        Case(
            "p5-skip-bad-drops-every-item",
            "p5",
            change_lines(ITEMS, lambda line: b"{"),
            ITEMS,
            1,
            None,
        ),
    ]


def _byo_cases() -> list[Case]:
    def jsonl(case_id: str, line: int, key: str, raw: str | None, kind: str = "bad_value") -> Case:
        damage = set_json(JSONL, line, key, raw)
        return Case(f"byo-jsonl-{case_id}", "byo-jsonl", damage, JSONL, line, kind)

    def csv(
        case_id: str, line: int, text: str | bytes, kind: str | None = "malformed_line"
    ) -> Case:
        return Case(f"byo-csv-{case_id}", "byo-csv", replace(CSV, line, text), CSV, line, kind)

    user, item, time = "A3G6XNM240RMWA", "B003H8180I", "1600000000"
    big = "x" * 140_000  # over the csv module's 131,072-character field limit
    nan_time = b'"timestamp": NaN, "time": '
    return [
        Case(
            "byo-jsonl-not-json",
            "byo-jsonl",
            replace(JSONL, 5, f"{user},{item}"),
            JSONL,
            5,
            "malformed_line",
        ),
        Case(
            "byo-jsonl-deeply-nested",
            "byo-jsonl",
            replace(JSONL, 6, '{"user": ' + DEEP),
            JSONL,
            6,
            "malformed_line",
        ),
        jsonl("deeply-nested-field", 7, "extra", DEEP, "malformed_line"),
        jsonl("timestamp-over-4300-digits", 8, "timestamp", DIGITS_5000, "malformed_line"),
        jsonl("timestamp-huge-integer", 10, "timestamp", "1" + "0" * 400),
        jsonl("timestamp-over-2-53", 11, "timestamp", "100000000000000000000"),
        jsonl("timestamp-nan", 12, "timestamp", "NaN"),
        jsonl("timestamp-infinity", 13, "timestamp", "Infinity"),
        jsonl("timestamp-boolean", 14, "timestamp", "true"),
        jsonl("timestamp-not-a-date", 15, "timestamp", '"yesterday"'),
        jsonl("timestamp-list", 16, "timestamp", "[1600000000]"),
        jsonl("timestamp-missing", 17, "timestamp", None),
        jsonl("user-lone-surrogate", 18, "user", '"\\ud800"'),
        jsonl("user-list", 19, "user", '["A3G6XNM240RMWA"]'),
        jsonl("user-missing", 20, "user", None),
        jsonl("user-float", 21, "user", "1.5"),
        jsonl("item-unknown", 22, "item", '"NOPE"', "unknown_item"),
        Case(
            "byo-jsonl-not-utf8",
            "byo-jsonl",
            replace(JSONL, 23, b'{"user": "\xc3("}'),
            JSONL,
            23,
            "bad_encoding",
        ),
        Case(
            "byo-jsonl-title-lone-surrogate",
            "byo-jsonl",
            set_json(ITEMS, 2, "title", '"\\udbff"'),
            ITEMS,
            2,
            "bad_value",
        ),
        Case("byo-jsonl-file-empty", "byo-jsonl", overwrite(JSONL, ""), JSONL, None, None),
        Case(
            "byo-jsonl-skip-bad-drops-every-user",
            "byo-jsonl",
            change_lines(JSONL, lambda line: line.replace(b'"timestamp": ', nan_time)),
            JSONL,
            1,
            None,
        ),
        csv("quoted-field-over-128-kib", 5, f'{user},"{big}",{time}'),
        csv("unquoted-field-over-128-kib", 6, f"{user},{big},{time}"),
        csv("text-after-closing-quote", 7, f'{user},"{item}"x,{time}'),
        csv("unterminated-quote", 8, f'{user},"{item},{time}'),
        csv("carriage-return-in-field", 9, f'"{user}",B00\r3H8180I,{time}'),
        csv("too-few-fields", 10, f"{user},{item}"),
        csv("too-many-fields", 11, f"{user},{item},{time},5"),
        csv("timestamp-nan", 12, f"{user},{item},nan", "bad_value"),
        csv("timestamp-infinity", 13, f"{user},{item},inf", "bad_value"),
        csv("timestamp-1e400", 14, f"{user},{item},1e400", "bad_value"),
        csv("timestamp-5000-digits", 15, f"{user},{item},{DIGITS_5000}", "bad_value"),
        csv("timestamp-over-2-53", 16, f"{user},{item},100000000000000000000", "bad_value"),
        csv("timestamp-not-a-date", 17, f"{user},{item},2024-13-45", "bad_value"),
        csv("user-empty", 18, f",{item},{time}", "bad_value"),
        csv("item-unknown", 19, f"{user},NOPE,{time}", "unknown_item"),
        csv("not-utf8", 20, b"A3G6XNM240RMWA,B003H8180I\xff,1600000000", "bad_encoding"),
        csv("header-misspelt", 1, "usr,item,timestamp", None),
        csv("header-field-over-128-kib", 1, f'"{big}",user,item', None),
        Case("byo-csv-header-only", "byo-csv", keep_lines(CSV, 1), CSV, None, None),
        Case("byo-csv-file-empty", "byo-csv", overwrite(CSV, ""), CSV, 1, None),
        Case(
            "byo-csv-price-nan",
            "byo-csv",
            set_json(ITEMS, 3, "price", "NaN"),
            ITEMS,
            3,
            "bad_value",
        ),
        Case(
            "byo-csv-skip-bad-drops-every-user",
            "byo-csv",
            change_lines(CSV, with_field(2, "nan", ","), first=2),
            CSV,
            2,
            None,
        ),
    ]


def _recbole_cases() -> list[Case]:
    def inter(case_id: str, line: int, text: str | bytes, kind: str | None) -> Case:
        return Case(
            f"recbole-inter-{case_id}", "recbole", replace(INTER, line, text), INTER, line, kind
        )

    def price(case_id: str, line: int, value: str) -> Case:
        damage = set_field(ITEM, line, 4, value)
        return Case(f"recbole-item-price-{case_id}", "recbole", damage, ITEM, line, "bad_value")

    user, item, time = "A3G6XNM240RMWA", "B003H8180I", "1600000000"
    return [
        inter("too-few-fields", 5, f"{user}\t{item}", "malformed_line"),
        inter("too-many-fields", 6, f"{user}\t{item}\t{time}\t5", "malformed_line"),
        inter("user-empty", 7, f"\t{item}\t{time}", "bad_value"),
        inter("user-blank", 8, f"  \t{item}\t{time}", "bad_value"),
        inter("timestamp-nan", 9, f"{user}\t{item}\tnan", "bad_value"),
        inter("timestamp-400-digits", 10, f"{user}\t{item}\t{'1' * 400}", "bad_value"),
        inter("timestamp-1e300", 11, f"{user}\t{item}\t1e300", "bad_value"),
        inter("item-unknown", 12, f"{user}\tNOPE\t{time}", "unknown_item"),
        inter("not-utf8", 13, b"A3G6XNM240RMWA\t\xfe\t1600000000", "bad_encoding"),
        inter("header-untyped", 1, "user_id\titem_id\ttimestamp", None),
        Case("recbole-inter-header-only", "recbole", keep_lines(INTER, 1), INTER, None, None),
        Case("recbole-inter-file-empty", "recbole", overwrite(INTER, ""), INTER, 1, None),
        price("nan", 5, "nan"),
        price("infinity", 6, "inf"),
        price("400-digits", 7, "9" * 400),
        price("not-a-number", 8, "cheap"),
        price("negative", 9, "-3"),
        Case(
            "recbole-item-duplicate",
            "recbole",
            copy_line(ITEM, 2, 10),
            ITEM,
            10,
            "duplicate_item",
        ),
        Case(
            "recbole-item-too-few-fields",
            "recbole",
            replace(ITEM, 11, "B0\tonly a title"),
            ITEM,
            11,
            "malformed_line",
        ),
        Case(
            "recbole-skip-bad-drops-every-user",
            "recbole",
            change_lines(INTER, with_field(2, "nan", "\t"), first=2),
            INTER,
            2,
            None,
        ),
    ]


def _unisrec_cases() -> list[Case]:
    def case(case_id: str, file: str, line: int | None, damage: Damage, kind: str | None) -> Case:
        return Case(f"unisrec-{case_id}", "unisrec", damage, f"{UNI}.{file}", line, kind)

    def index(case_id: str, file: str, line: int, value: str) -> Case:
        return case(case_id, file, line, set_field(f"{UNI}.{file}", line, 1, value), "bad_value")

    test, valid, train = f"{UNI}.test.inter", f"{UNI}.valid.inter", f"{UNI}.train.inter"
    header_only = all_of(keep_lines(test, 1), keep_lines(valid, 1), keep_lines(train, 1))
    return [
        index("index-over-4300-digits", "item2index", 5, DIGITS_5000),
        index("index-19-digits", "item2index", 6, "1234567890123456789"),
        index("index-superscript-digit", "item2index", 7, "\u00b2"),
        index("index-negative", "user2index", 8, "-1"),
        case(
            "index-without-tab",
            "item2index",
            9,
            replace(f"{UNI}.item2index", 9, "B0"),
            "malformed_line",
        ),
        case(
            "text-too-many-fields",
            "text",
            3,
            replace(f"{UNI}.text", 3, "B0\ta\tb"),
            "malformed_line",
        ),
        case("text-not-utf8", "text", 4, replace(f"{UNI}.text", 4, b"B0\t\x80"), "bad_encoding"),
        case("test-unknown-item", "test.inter", 2, set_field(test, 2, 2, "999999"), "unknown_item"),
        case(
            "valid-unknown-user", "valid.inter", 3, set_field(valid, 3, 0, "99999"), "unknown_user"
        ),
        case(
            "test-history-disagrees",
            "test.inter",
            4,
            set_field(test, 4, 1, "1 2 3"),
            "inconsistent_split",
        ),
        case(
            "train-too-few-fields", "train.inter", 2, replace(train, 2, "0\t1 2"), "malformed_line"
        ),
        case("inter-files-header-only", "test.inter", None, header_only, None),
        case(
            "skip-bad-drops-every-user",
            "test.inter",
            2,
            change_lines(test, lambda line: b"garbage", first=2),
            None,
        ),
    ]


def _dealrec_cases() -> list[Case]:
    def case(case_id: str, file: str, line: int | None, damage: Damage, kind: str | None) -> Case:
        return Case(f"dealrec-{case_id}", "dealrec", damage, file, line, kind)

    valid, test = "sequential_valid.txt", "sequential_test.txt"
    return [
        case("seq-item-id-float", ITEMS, 5, set_json(ITEMS, 5, "seq_item_id", "5.0"), "bad_value"),
        case(
            "title-lone-surrogate", ITEMS, 6, set_json(ITEMS, 6, "title", '"\\ud800"'), "bad_value"
        ),
        case("price-nan", ITEMS, 7, set_json(ITEMS, 7, "price", "NaN"), "bad_value"),
        case("valid-unknown-user", valid, 3, replace(valid, 3, "NOBODY 5"), "unknown_user"),
        case(
            "train-file-empty",
            "sequential_train.txt",
            None,
            overwrite("sequential_train.txt", ""),
            None,
        ),
        case("test-file-without-items", test, None, change_lines(test, _first_tokens(1)), None),
    ]


CASES: list[Case] = (
    _p5_cases() + _byo_cases() + _recbole_cases() + _unisrec_cases() + _dealrec_cases()
)
