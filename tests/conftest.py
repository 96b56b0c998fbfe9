import csv
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():  # CI lays ../shared beside the clone; a checkout elsewhere can point to it
    import os

    DATA = Path(os.environ.get("SEMSEARCH_TEST_DATA", "/work/shared/data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert DATA.is_dir(), f"evaluation data not found at {DATA} (set SEMSEARCH_TEST_DATA)"
    return DATA


@pytest.fixture(scope="session")
def sts_sentences(data_dir) -> list[str]:
    with open(data_dir / "stsb" / "sts-test.tsv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r[5] for r in rows] + [r[6] for r in rows]
