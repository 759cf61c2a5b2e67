"""Draw a seeded subset of users from a P5 data folder (user_sequence.txt + items.jsonl).

The shipped data sets were made with it from the full Amazon Beauty folder:

    python scripts/make_subset.py $LLMREC_DATA/amazon-beauty data/amazon-beauty-mini --users 300
    python scripts/make_subset.py $LLMREC_DATA/amazon-beauty data/amazon-beauty-10k \
        --users 10000 --fields item_id title categories brand

Users are `random.seed(SEED)` then `random.sample` over line indices, kept in file order; their
lines are copied unchanged. `items.jsonl` keeps, in file order, the rows of every item these
users touch: unchanged, or with only `--fields` (in their order in the row). The same source,
arguments and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

SEQUENCE_FILE = "user_sequence.txt"
ITEMS_FILE = "items.jsonl"


def sample_lines(lines: list[str], num_users: int, seed: int) -> list[str]:
    """`num_users` lines drawn without replacement, in their original order."""
    if not 0 < num_users <= len(lines):
        raise ValueError(f"--users must be in 1..{len(lines)}, got {num_users}")
    random.seed(seed)  # the global generator, as the 300-user fixture was drawn
    return [lines[index] for index in sorted(random.sample(range(len(lines)), num_users))]


def touched_item_rows(
    item_lines: list[str], sequence_lines: list[str], fields: list[str] | None = None
) -> list[str]:
    """The rows of `items.jsonl` whose `item_id` occurs in the sequences (after the user id):
    unchanged, or re-encoded with only `fields`."""
    touched = {item for line in sequence_lines for item in line.split()[1:]}
    rows = [line for line in item_lines if json.loads(line)["item_id"] in touched]
    if fields is None:
        return rows
    kept = ({k: v for k, v in json.loads(line).items() if k in fields} for line in rows)
    return [json.dumps(row, ensure_ascii=False) + "\n" for row in kept]


def make_subset(
    source: Path, target: Path, num_users: int, seed: int, fields: list[str] | None = None
) -> dict[str, str]:
    """Write the subset into `target`; returns each file's sha256."""
    lines = (source / SEQUENCE_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    chosen = sample_lines(lines, num_users, seed)
    item_lines = (source / ITEMS_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    target.mkdir(parents=True, exist_ok=True)
    items = "".join(touched_item_rows(item_lines, chosen, fields))
    contents = {SEQUENCE_FILE: "".join(chosen), ITEMS_FILE: items}
    digests = {}
    for name, text in contents.items():
        data = text.encode("utf-8")
        (target / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="P5 folder with user_sequence.txt + items.jsonl")
    parser.add_argument("target", type=Path, help="folder to write the subset into")
    parser.add_argument("--users", type=int, required=True, help="number of users to draw")
    parser.add_argument("--seed", type=int, default=0, help="seed of random.sample (default 0)")
    parser.add_argument("--fields", nargs="+", help="item fields to keep (default: every field)")
    args = parser.parse_args()
    digests = make_subset(args.source, args.target, args.users, args.seed, args.fields)
    for name, digest in digests.items():
        print(f"{name} sha256 {digest}")


if __name__ == "__main__":
    main()
