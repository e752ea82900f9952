"""The Parquet archive read by analytics engines (pyarrow, DuckDB) with no StrataMQ code:
exactly the messages that were sent. Schema: docs/archive.md."""

import time
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
from rocketmq import Producer

from clients import config, make_message
from conftest import _broker

FAST_COMPACTION = """
[compactor]
compact_after = "1s"
compaction_interval = "1s"
"""


def test_pyarrow_and_duckdb_read_the_archive(tmp_path):
    b = _broker(tmp_path, "sqlite+local", config=FAST_COMPACTION)
    try:
        producer = Producer(config(b.endpoint), ("archived",))
        producer.startup()
        sent = {}
        try:
            for i in range(200):
                body = f"archived message {i}".encode()
                receipt = producer.send(make_message("archived", i, body, tag=f"T{i % 3}", keys=[f"k{i}"],
                                                     props={"amount": str(i)}))
                sent[receipt.message_id] = (body, f"T{i % 3}", str(i))
        finally:
            producer.shutdown()
        folder = Path(b.data_dir) / "store" / "data" / "_default" / "archived"
        deadline = time.monotonic() + 60
        while True:
            files = sorted(folder.glob("*/*.parquet"))
            if files:
                rows = ds.dataset([str(f) for f in files], format="parquet").count_rows()
                if rows >= 200:
                    break
            assert time.monotonic() < deadline, "the topic was not compacted"
            time.sleep(0.5)

        table = ds.dataset([str(f) for f in files], format="parquet").to_table()
        assert table.schema.metadata[b"strata.schema_version"] == b"1"
        got = {row["message_id"]: row for row in table.to_pylist()}
        assert set(got) == set(sent)
        for mid, (body, tag, amount) in sent.items():
            row = got[mid]
            assert row["body"] == body and row["tag"] == tag
            assert dict(row["properties"])["amount"] == amount
            assert row["keys"] == [f"k{amount}"]
        offsets = sorted((int(f.parent.name), o) for f, t in
                         ((f, ds.dataset(str(f), format="parquet").to_table(columns=["offset"])) for f in files)
                         for o in t.column("offset").to_pylist())
        assert len(offsets) == len(set(offsets)) == 200, "each (queue, offset) once"

        glob = str(folder / "*" / "*.parquet")
        con = duckdb.connect()
        count, tags, total = con.execute(
            f"SELECT count(*), count(DISTINCT tag), sum(CAST(properties['amount'] AS INTEGER)) "
            f"FROM read_parquet('{glob}')").fetchone()
        assert (count, tags, total) == (200, 3, sum(range(200)))
        newest = con.execute(f"SELECT max(store_timestamp) FROM read_parquet('{glob}')").fetchone()[0]
        assert newest is not None
    finally:
        b.stop()
