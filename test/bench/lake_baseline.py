"""Baselines for the lake benchmark, run in the project venv by test/bench/lake.ts.

Builds the same rows the LakeSync flush writes (the change rows of N inserts
and the N current-state rows), untimed, then times:
  pyarrow: write both as ZSTD Parquet files;
  pyiceberg: append both to fresh tables in a SqlCatalog on local disk.
Prints one JSON line.
"""
import json, os, sys, tempfile, time, shutil
import pyarrow as pa
import pyarrow.parquet as pq

n = int(sys.argv[1])
base_us = (int(time.time() * 1000) - 60_000) * 1000
seq = pa.array(range(1, n + 1), pa.int64())
row_ids = pa.array([f"r{i}" for i in range(n)], pa.string())
hlc = pa.array([((base_us // 1000 + i // 65536) << 16) | (i % 65536) for i in range(n)], pa.int64())
hlc_time = pa.array([base_us + (i // 65536) * 1000 for i in range(n)], pa.timestamp("us", tz="UTC"))
title = pa.array([f"todo {i}" for i in range(n)], pa.string())
done = pa.array([i % 2 == 0 for i in range(n)], pa.bool_())
position = pa.array(range(n), pa.int64())
score = pa.array([i * 0.5 for i in range(n)], pa.float64())
changes = pa.table({
    "_seq": seq,
    "_delta_id": pa.array([format(i, "032x") for i in range(n)], pa.string()),
    "_op": pa.array(["insert"] * n, pa.string()),
    "_row_id": row_ids,
    "_client_id": pa.array(["bench"] * n, pa.string()),
    "_hlc": hlc,
    "_hlc_time": hlc_time,
    "_set_columns": pa.array([["title", "done", "position", "score"]] * n, pa.list_(pa.string())),
    "title": title, "done": done, "position": position, "score": score,
})
state = pa.table({
    "_row_id": row_ids, "_seq": seq, "_hlc": hlc, "_hlc_time": hlc_time,
    "_state": pa.array([os.urandom(64) for _ in range(n)], pa.binary()),
    "title": title, "done": done, "position": position, "score": score,
})

out = {}
d = tempfile.mkdtemp(prefix="lakesync-bench-py-")
try:
    t0 = time.perf_counter()
    pq.write_table(changes, os.path.join(d, "changes.parquet"), compression="zstd")
    t1 = time.perf_counter()
    pq.write_table(state, os.path.join(d, "state.parquet"), compression="zstd")
    t2 = time.perf_counter()
    out["pyarrow_changes_s"] = t1 - t0
    out["pyarrow_both_s"] = t2 - t0

    from pyiceberg.catalog.sql import SqlCatalog
    cat = SqlCatalog("bench", uri=f"sqlite:///{d}/catalog.db", warehouse=f"file://{d}/warehouse")
    cat.create_namespace("bench")
    tc = cat.create_table("bench.todos_changes", schema=changes.schema)
    ts = cat.create_table("bench.todos", schema=state.schema)
    t0 = time.perf_counter()
    tc.append(changes)
    ts.append(state)
    t1 = time.perf_counter()
    out["pyiceberg_both_s"] = t1 - t0
    out["pyiceberg_rows"] = len(tc.scan().to_arrow()) if n <= 200_000 else n
finally:
    shutil.rmtree(d, ignore_errors=True)
print(json.dumps(out))
