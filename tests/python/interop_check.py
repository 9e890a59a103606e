"""Reads shards written by the Rust writer with real Python readers and checks values.

Usage: interop_check.py <dataset_dir> <expected.json>
expected.json: {"rows": [{clip_id, label, label_name, audio: [...], frame_seeds: [...],
                 frame_times: [...], segment_labels, orig_fps, audio_source_path}], "shape": [F, T],
                 "classes": [...]}
Exits non-zero with a message on the first mismatch.
"""
import io
import json
import sys
from pathlib import Path

import numpy as np

root = Path(sys.argv[1])
expected = json.loads(Path(sys.argv[2]).read_text())
rows = expected["rows"]
F, T = expected["shape"]
n = len(rows)
files = sorted(str(p) for p in root.glob("train/*.parquet"))
assert files, f"no shards under {root}"
want_audio = np.array([r["audio"] for r in rows], dtype=np.float32).reshape(n, F, T)
want_ids = [r["clip_id"] for r in rows]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        sys.exit(f"FAIL: {what}")
    checks += 1


# --- pyarrow: the spectrogram reshapes to (N, F, T) without per-row objects.
import pyarrow as pa
import pyarrow.parquet as pq

table = pq.read_table(files)
field = table.schema.field("audio")
check(pa.types.is_fixed_size_list(field.type), f"audio is a fixed-size list, got {field.type}")
shape = json.loads(field.metadata[b"shape"])
check(shape == [F, T], f"shape metadata {shape}")
check(json.loads(field.metadata[b"dim_names"]) == ["freq", "time"], "dim names")
col = table.column("audio").combine_chunks()
flat = col.values.to_numpy(zero_copy_only=True)  # raises if a copy were needed
spec = flat.reshape(-1, *shape)
check(spec.shape == (n, F, T), f"pyarrow shape {spec.shape}")
check(np.array_equal(spec, want_audio), "pyarrow audio values")
check(table.column("clip_id").to_pylist() == want_ids, "pyarrow clip ids")
meta = table.schema.metadata
preset = json.loads(meta[b"ogmge.preset"])
check(preset["audio"]["name"] == "synthetic-stft", f"preset in file metadata: {preset['audio']['name']}")
check(json.loads(meta[b"ogmge.classes"]) == expected["classes"], "classes in file metadata")
segs = table.column("segment_labels").to_pylist()
check(segs == [r["segment_labels"] for r in rows], "segment labels (with nulls)")
check(table.column("orig_fps").to_pylist() == [r["orig_fps"] for r in rows], "nullable provenance")

# --- pandas
df = table.to_pandas()
check(df["label"].tolist() == [r["label"] for r in rows], "pandas labels")
check(df["label_name"].tolist() == [r["label_name"] for r in rows], "pandas label names")
import pandas as pd

check([None if pd.isna(x) else x for x in df["audio_source_path"]] == [r["audio_source_path"] for r in rows],
      "pandas audio source paths (nulls stay nulls)")

# --- HF datasets: ClassLabel from the metadata, frames as images without a cast.
import datasets
from PIL import Image

ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train")
check(isinstance(ds.features["label"], datasets.ClassLabel), f"HF label feature {ds.features['label']}")
check(ds.features["label"].names == expected["classes"], "HF class names")
check(ds.features["label"].int2str(rows[1]["label"]) == rows[1]["label_name"], "HF int2str")
check(isinstance(ds.features["frames"].feature, datasets.Image), f"HF frames feature {ds.features['frames']}")
for i in (0, n - 1):
    ex = ds[i]
    check(len(ex["audio"]) == F * T, "HF audio length")
    check(np.allclose(np.asarray(ex["audio"], dtype=np.float32).reshape(F, T), want_audio[i]), "HF audio values")
    imgs = ex["frames"]
    check(len(imgs) == len(rows[i]["frame_seeds"]), "HF frame count")
    for img, seed in zip(imgs, rows[i]["frame_seeds"]):
        check(isinstance(img, Image.Image) and img.size == (32, 24), f"HF frame is a 32x24 PIL image: {img}")
        r = np.asarray(img.convert("RGB"))[:, :, 0].astype(float).mean()
        check(abs(r - seed) < 6, f"HF frame red channel {r} ~ {seed}")

# --- DuckDB: audio reads as FLOAT[], frames as a list of structs.
import duckdb

con = duckdb.connect()
glob = str(root / "train" / "*.parquet")
res = con.execute(
    f"SELECT clip_id, label, len(audio), audio[1], audio[{F * T}], len(frames), typeof(audio) "
    f"FROM read_parquet('{glob}') ORDER BY clip_id"
).fetchall()
check(len(res) == n, "duckdb row count")
for (cid, label, alen, first, last, nframes, typ), r, a in zip(res, sorted(rows, key=lambda r: r["clip_id"]),
                                                             want_audio[np.argsort(want_ids)]):
    check(cid == r["clip_id"] and label == r["label"], "duckdb ids and labels")
    check(alen == F * T and typ.startswith("FLOAT["), f"duckdb audio type {typ} len {alen}")
    check(np.float32(first) == a.reshape(-1)[0] and np.float32(last) == a.reshape(-1)[-1], "duckdb audio values")
    check(nframes == len(r["frame_seeds"]), "duckdb frame count")
jpeg = con.execute(f"SELECT frames[1].bytes FROM read_parquet('{glob}') LIMIT 1").fetchone()[0]
check(Image.open(io.BytesIO(jpeg)).format == "JPEG", "duckdb frame bytes are a JPEG")

# --- polars: audio is an Array of float32.
import polars as pl

pdf = pl.read_parquet(files)
check(pdf["audio"].dtype == pl.Array(pl.Float32, F * T), f"polars audio dtype {pdf['audio'].dtype}")
check(np.array_equal(pdf["audio"].to_numpy().reshape(n, F, T), want_audio), "polars audio values")
check(pdf["label"].to_list() == [r["label"] for r in rows], "polars labels")

# --- the dataset card and index next to the shards
card = (root / "README.md").read_text()
check(card.startswith("---\nconfigs:") and 'path: "train/*.parquet"' in card, "dataset card YAML header")
index = json.loads((root / "index.json").read_text())
check(sum(s["rows"] for s in index["shards"]) == n, "index rows")
print(f"interop ok: {checks} checks, {n} rows, pyarrow {pa.__version__}, datasets {datasets.__version__}, "
      f"duckdb {duckdb.__version__}, polars {pl.__version__}")
