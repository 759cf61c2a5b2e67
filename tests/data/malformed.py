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

    case_id: str  # starts with the name of its base: "p5-", "byo-csv-", ...
    damage: Damage
    file: str
    line: int | None
    skip: str | None  # the problem kind --skip-bad counts; None: still an error naming `file`

    @property
    def base(self) -> str:
        return next(base for base in BASES if self.case_id.startswith(base + "-"))


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
    return change_lines(file, lambda _: data, first=line, last=line)


def set_json(file: str, line: int, key: str, raw: str | None) -> Damage:
    """In JSON line `line` of `file`, `key` becomes the raw JSON text `raw` (None: removed)."""
    marker = json.dumps("\u0000raw\u0000")

    def change(text: bytes) -> bytes:
        record = json.loads(text)
        record.pop(key, None)
        if raw is not None:
            record[key] = json.loads(marker)
        return json.dumps(record).replace(marker, raw or "").encode("utf-8")

    return change_lines(file, change, first=line, last=line)


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


def set_field(file: str, line: int, position: int, value: str) -> Damage:
    """Tab-separated field `position` (0-based) of line `line` of `file` becomes `value`."""
    return change_lines(file, with_field(position, value, "\t"), first=line, last=line)


# --- the cases -----------------------------------------------------------------------------------

ITEMS, SEQUENCES = "items.jsonl", "user_sequence.txt"
JSONL, CSV = "interactions.jsonl", "interactions.csv"
INTER, ITEM = "beauty.inter", "beauty.item"
I2I, U2I, TEXT = (f"{UNISREC_PREFIX}.{suffix}" for suffix in ("item2index", "user2index", "text"))
TRAIN, VALID, TEST = (f"{UNISREC_PREFIX}.{split}.inter" for split in ("train", "valid", "test"))
MAL, BAD, ENC = "malformed_line", "bad_value", "bad_encoding"
USER, ITEM_ID, TIME = "A3G6XNM240RMWA", "B003H8180I", "1600000000"  # the first interaction
BIG = "x" * 140_000  # over the csv module's 131,072-character field limit
NAN_TIME = b'"timestamp": NaN, "time": '


def _line(case_id: str, file: str, line: int, text: str | bytes, skip: str | None) -> Case:
    """Line `line` of `file` replaced by `text`."""
    return Case(case_id, replace(file, line, text), file, line, skip)


def _json(case_id: str, file: str, line: int, key: str, raw: str | None, skip: str = BAD) -> Case:
    """`key` of JSON line `line` set to the raw JSON `raw` (None: removed)."""
    return Case(case_id, set_json(file, line, key, raw), file, line, skip)


def _field(case_id: str, file: str, line: int, position: int, value: str, skip: str) -> Case:
    return Case(case_id, set_field(file, line, position, value), file, line, skip)


def _no_user(case_id: str, damage: Damage, file: str, line: int | None = None) -> Case:
    """An error with or without --skip-bad: nothing usable is left (or can be skipped)."""
    return Case(case_id, damage, file, line, None)


P5_CASES = [
    _line("p5-items-not-json", ITEMS, 3, '{"item_id": "X", ', MAL),
    _line("p5-items-not-an-object", ITEMS, 4, "[1, 2]", MAL),
    _line("p5-items-deeply-nested", ITEMS, 5, DEEP, MAL),
    _json("p5-deeply-nested-field", ITEMS, 6, "category_paths", DEEP, MAL),
    _json("p5-integer-over-4300-digits", ITEMS, 7, "p5_item_id", DIGITS_5000, MAL),
    _json("p5-title-lone-surrogate", ITEMS, 8, "title", '"Rose \\ud800 cream"'),
    _json("p5-brand-lone-surrogate", ITEMS, 9, "brand", '"\\udfff"'),
    _json("p5-category-lone-surrogate", ITEMS, 10, "categories", '["Beauty", "\\ud83d"]'),
    _json("p5-item-id-lone-surrogate", ITEMS, 11, "item_id", '"\\udc00X"'),
    _json("p5-description-lone-surrogate", ITEMS, 12, "description", '"\\ud800"'),
    _json("p5-price-nan", ITEMS, 13, "price", "NaN"),
    _json("p5-price-infinity", ITEMS, 14, "price", "Infinity"),
    _json("p5-price-minus-infinity", ITEMS, 15, "price", "-Infinity"),
    _json("p5-price-huge-integer", ITEMS, 16, "price", "1" + "0" * 400),
    _json("p5-price-over-2-53", ITEMS, 17, "price", "100000000000000000000"),
    _json("p5-price-huge-float", ITEMS, 18, "price", "1e400"),
    _json("p5-price-negative", ITEMS, 19, "price", "-5"),
    _json("p5-price-string", ITEMS, 20, "price", '"12.50"'),
    _json("p5-price-boolean", ITEMS, 21, "price", "true"),
    _json("p5-categories-string", ITEMS, 22, "categories", '"Beauty"'),
    _json("p5-categories-nested", ITEMS, 23, "categories", '[["Beauty"]]'),
    _json("p5-title-number", ITEMS, 24, "title", "42"),
    _json("p5-brand-object", ITEMS, 25, "brand", '{"name": "Acme"}'),
    _json("p5-item-id-missing", ITEMS, 26, "item_id", None),
    _json("p5-item-id-boolean", ITEMS, 27, "item_id", "false"),
    _json("p5-item-id-empty", ITEMS, 28, "item_id", '""'),
    Case("p5-item-duplicate", copy_line(ITEMS, 1, 29), ITEMS, 29, "duplicate_item"),
    _line("p5-items-not-utf8", ITEMS, 30, b'{"item_id": "X\xff"}', ENC),
    _line("p5-sequence-not-utf8", SEQUENCES, 3, b"A3G6X \xe9", ENC),
    _line("p5-sequence-unknown-item", SEQUENCES, 4, f"U4 {ITEM_ID} NOPE X Y", "unknown_item"),
    Case("p5-sequence-duplicate-user", copy_line(SEQUENCES, 2, 6), SEQUENCES, 6, "duplicate_user"),
    _line("p5-sequence-user-without-items", SEQUENCES, 7, "LONELY", "empty_sequence"),
    _line("p5-sequence-too-short", SEQUENCES, 8, f"SHORT {ITEM_ID} {ITEM_ID}", "too_short"),
    _no_user("p5-sequence-file-empty", overwrite(SEQUENCES, ""), SEQUENCES),
    _no_user("p5-sequence-file-blank", overwrite(SEQUENCES, "\n \n\t\n"), SEQUENCES),
    _no_user("p5-items-file-empty", overwrite(ITEMS, ""), ITEMS),
    _no_user("p5-items-file-missing", lambda folder: (folder / ITEMS).unlink(), ITEMS),
    _no_user(
        "p5-skip-bad-drops-every-user", change_lines(SEQUENCES, _first_tokens(3)), SEQUENCES, 1
    ),
    _no_user("p5-skip-bad-drops-every-item", change_lines(ITEMS, lambda line: b"{"), ITEMS, 1),
]

BYO_JSONL_CASES = [
    _line("byo-jsonl-not-json", JSONL, 5, f"{USER},{ITEM_ID}", MAL),
    _line("byo-jsonl-deeply-nested", JSONL, 6, '{"user": ' + DEEP, MAL),
    _json("byo-jsonl-deeply-nested-field", JSONL, 7, "extra", DEEP, MAL),
    _json("byo-jsonl-timestamp-over-4300-digits", JSONL, 8, "timestamp", DIGITS_5000, MAL),
    _json("byo-jsonl-timestamp-huge-integer", JSONL, 10, "timestamp", "1" + "0" * 400),
    _json("byo-jsonl-timestamp-over-2-53", JSONL, 11, "timestamp", "100000000000000000000"),
    _json("byo-jsonl-timestamp-nan", JSONL, 12, "timestamp", "NaN"),
    _json("byo-jsonl-timestamp-infinity", JSONL, 13, "timestamp", "Infinity"),
    _json("byo-jsonl-timestamp-boolean", JSONL, 14, "timestamp", "true"),
    _json("byo-jsonl-timestamp-not-a-date", JSONL, 15, "timestamp", '"yesterday"'),
    _json("byo-jsonl-timestamp-list", JSONL, 16, "timestamp", "[1600000000]"),
    _json("byo-jsonl-timestamp-missing", JSONL, 17, "timestamp", None),
    _json("byo-jsonl-user-lone-surrogate", JSONL, 18, "user", '"\\ud800"'),
    _json("byo-jsonl-user-list", JSONL, 19, "user", f'["{USER}"]'),
    _json("byo-jsonl-user-missing", JSONL, 20, "user", None),
    _json("byo-jsonl-user-float", JSONL, 21, "user", "1.5"),
    _json("byo-jsonl-item-unknown", JSONL, 22, "item", '"NOPE"', "unknown_item"),
    _line("byo-jsonl-not-utf8", JSONL, 23, b'{"user": "\xc3("}', ENC),
    _json("byo-jsonl-title-lone-surrogate", ITEMS, 2, "title", '"\\udbff"'),
    _no_user("byo-jsonl-file-empty", overwrite(JSONL, ""), JSONL),
    _no_user(
        "byo-jsonl-skip-bad-drops-every-user",
        change_lines(JSONL, lambda line: line.replace(b'"timestamp": ', NAN_TIME)),
        JSONL,
        1,
    ),
]

BYO_CSV_CASES = [
    _line("byo-csv-quoted-field-over-128-kib", CSV, 5, f'{USER},"{BIG}",{TIME}', MAL),
    _line("byo-csv-unquoted-field-over-128-kib", CSV, 6, f"{USER},{BIG},{TIME}", MAL),
    _line("byo-csv-text-after-closing-quote", CSV, 7, f'{USER},"{ITEM_ID}"x,{TIME}', MAL),
    _line("byo-csv-unterminated-quote", CSV, 8, f'{USER},"{ITEM_ID},{TIME}', MAL),
    _line("byo-csv-carriage-return-in-field", CSV, 9, f'"{USER}",B00\r3H8180I,{TIME}', MAL),
    _line("byo-csv-too-few-fields", CSV, 10, f"{USER},{ITEM_ID}", MAL),
    _line("byo-csv-too-many-fields", CSV, 11, f"{USER},{ITEM_ID},{TIME},5", MAL),
    _line("byo-csv-timestamp-nan", CSV, 12, f"{USER},{ITEM_ID},nan", BAD),
    _line("byo-csv-timestamp-infinity", CSV, 13, f"{USER},{ITEM_ID},inf", BAD),
    _line("byo-csv-timestamp-1e400", CSV, 14, f"{USER},{ITEM_ID},1e400", BAD),
    _line("byo-csv-timestamp-5000-digits", CSV, 15, f"{USER},{ITEM_ID},{DIGITS_5000}", BAD),
    _line("byo-csv-timestamp-over-2-53", CSV, 16, f"{USER},{ITEM_ID},{10**20}", BAD),
    _line("byo-csv-timestamp-not-a-date", CSV, 17, f"{USER},{ITEM_ID},2024-13-45", BAD),
    _line("byo-csv-user-empty", CSV, 18, f",{ITEM_ID},{TIME}", BAD),
    _line("byo-csv-item-unknown", CSV, 19, f"{USER},NOPE,{TIME}", "unknown_item"),
    _line("byo-csv-not-utf8", CSV, 20, b"A3G6XNM240RMWA,B003H8180I\xff,1600000000", ENC),
    _line("byo-csv-header-misspelt", CSV, 1, "usr,item,timestamp", None),
    _line("byo-csv-header-field-over-128-kib", CSV, 1, f'"{BIG}",user,item', None),
    _no_user("byo-csv-header-only", keep_lines(CSV, 1), CSV),
    _no_user("byo-csv-file-empty", overwrite(CSV, ""), CSV, 1),
    _json("byo-csv-price-nan", ITEMS, 3, "price", "NaN"),
    _no_user(
        "byo-csv-skip-bad-drops-every-user",
        change_lines(CSV, with_field(2, "nan", ","), first=2),
        CSV,
        2,
    ),
]

RECBOLE_CASES = [
    _line("recbole-inter-too-few-fields", INTER, 5, f"{USER}\t{ITEM_ID}", MAL),
    _line("recbole-inter-too-many-fields", INTER, 6, f"{USER}\t{ITEM_ID}\t{TIME}\t5", MAL),
    _line("recbole-inter-user-empty", INTER, 7, f"\t{ITEM_ID}\t{TIME}", BAD),
    _line("recbole-inter-user-blank", INTER, 8, f"  \t{ITEM_ID}\t{TIME}", BAD),
    _field("recbole-inter-timestamp-nan", INTER, 9, 2, "nan", BAD),
    _field("recbole-inter-timestamp-400-digits", INTER, 10, 2, "1" * 400, BAD),
    _field("recbole-inter-timestamp-1e300", INTER, 11, 2, "1e300", BAD),
    _field("recbole-inter-item-unknown", INTER, 12, 1, "NOPE", "unknown_item"),
    _line("recbole-inter-not-utf8", INTER, 13, b"A3G6XNM240RMWA\t\xfe\t1600000000", ENC),
    _line("recbole-inter-header-untyped", INTER, 1, "user_id\titem_id\ttimestamp", None),
    _no_user("recbole-inter-header-only", keep_lines(INTER, 1), INTER),
    _no_user("recbole-inter-file-empty", overwrite(INTER, ""), INTER, 1),
    _field("recbole-item-price-nan", ITEM, 5, 4, "nan", BAD),
    _field("recbole-item-price-infinity", ITEM, 6, 4, "inf", BAD),
    _field("recbole-item-price-400-digits", ITEM, 7, 4, "9" * 400, BAD),
    _field("recbole-item-price-not-a-number", ITEM, 8, 4, "cheap", BAD),
    _field("recbole-item-price-negative", ITEM, 9, 4, "-3", BAD),
    Case("recbole-item-duplicate", copy_line(ITEM, 2, 10), ITEM, 10, "duplicate_item"),
    _line("recbole-item-too-few-fields", ITEM, 11, "B0\tonly a title", MAL),
    _no_user(
        "recbole-skip-bad-drops-every-user",
        change_lines(INTER, with_field(2, "nan", "\t"), first=2),
        INTER,
        2,
    ),
]

UNISREC_CASES = [
    _field("unisrec-index-over-4300-digits", I2I, 5, 1, DIGITS_5000, BAD),
    _field("unisrec-index-19-digits", I2I, 6, 1, "1234567890123456789", BAD),
    _field("unisrec-index-superscript-digit", I2I, 7, 1, "\u00b2", BAD),
    _field("unisrec-index-negative", U2I, 8, 1, "-1", BAD),
    _line("unisrec-index-without-tab", I2I, 9, "B0", MAL),
    _line("unisrec-text-too-many-fields", TEXT, 3, "B0\ta\tb", MAL),
    _line("unisrec-text-not-utf8", TEXT, 4, b"B0\t\x80", ENC),
    _field("unisrec-test-unknown-item", TEST, 2, 2, "999999", "unknown_item"),
    _field("unisrec-valid-unknown-user", VALID, 3, 0, "99999", "unknown_user"),
    _field("unisrec-test-history-disagrees", TEST, 4, 1, "1 2 3", "inconsistent_split"),
    _line("unisrec-train-too-few-fields", TRAIN, 2, "0\t1 2", MAL),
    _no_user(
        "unisrec-inter-files-header-only",
        all_of(keep_lines(TEST, 1), keep_lines(VALID, 1), keep_lines(TRAIN, 1)),
        TEST,
    ),
    _no_user(
        "unisrec-skip-bad-drops-every-user",
        change_lines(TEST, lambda line: b"garbage", first=2),
        TEST,
        2,
    ),
]

DEALREC_CASES = [
    _json("dealrec-seq-item-id-float", ITEMS, 5, "seq_item_id", "5.0"),
    _json("dealrec-title-lone-surrogate", ITEMS, 6, "title", '"\\ud800"'),
    _json("dealrec-price-nan", ITEMS, 7, "price", "NaN"),
    _line("dealrec-valid-unknown-user", "sequential_valid.txt", 3, "NOBODY 5", "unknown_user"),
    _no_user(
        "dealrec-train-file-empty", overwrite("sequential_train.txt", ""), "sequential_train.txt"
    ),
    _no_user(
        "dealrec-test-file-without-items",
        change_lines("sequential_test.txt", _first_tokens(1)),
        "sequential_test.txt",
    ),
]

CASES: list[Case] = (
    P5_CASES + BYO_JSONL_CASES + BYO_CSV_CASES + RECBOLE_CASES + UNISREC_CASES + DEALREC_CASES
)
