//! One shard row, and its conversion to and from Arrow record batches.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, SchemaRef};

use crate::catalog::Split;
use crate::schema::{col, frame_struct_fields};

/// A JPEG frame and the name it would have on disk (`<clip_id>/frame_00.jpg`).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub jpeg: Vec<u8>,
    pub path: String,
}

/// Where a row came from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provenance {
    /// Video file, relative to the raw dataset root.
    pub source_path: String,
    /// Separate audio file, relative to the raw dataset root, when one was used.
    pub audio_source_path: Option<String>,
    pub source_bytes: u64,
    pub source_sha256: String,
    pub duration_s: f64,
    pub orig_fps: Option<f64>,
    pub orig_width: Option<u32>,
    pub orig_height: Option<u32>,
    pub orig_sample_rate: Option<u32>,
    pub orig_channels: Option<u32>,
    /// The audio was shorter than the preset needs and was tiled.
    pub audio_tiled: bool,
}

/// One clip, as stored in a shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRecord {
    pub clip_id: String,
    pub split: Split,
    pub label: u32,
    pub label_name: String,
    /// Row-major matrix of the shard's audio shape.
    pub audio: Vec<f32>,
    pub frames: Vec<Frame>,
    /// Seconds from the start of the video of each frame.
    pub frame_times: Vec<f32>,
    pub segment_labels: Option<Vec<u32>>,
    pub provenance: Provenance,
}

fn list_offsets<T>(rows: &[T], len: impl Fn(&T) -> usize) -> OffsetBuffer<i32> {
    OffsetBuffer::from_lengths(rows.iter().map(len))
}

fn item(dt: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", dt, true))
}

/// Builds a record batch of `rows` for `schema` (from [`crate::schema::arrow_schema`]).
pub(crate) fn to_batch(schema: &SchemaRef, rows: &[ClipRecord], audio_len: usize) -> Result<RecordBatch, String> {
    for r in rows {
        if r.audio.len() != audio_len {
            return Err(format!("clip {}: audio has {} values, the shard's shape needs {audio_len}", r.clip_id, r.audio.len()));
        }
        if r.frames.len() != r.frame_times.len() {
            return Err(format!("clip {}: {} frames but {} frame times", r.clip_id, r.frames.len(), r.frame_times.len()));
        }
    }
    let strings = |f: &dyn Fn(&ClipRecord) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(rows.iter().map(f))) };
    let audio_values = Float32Array::from_iter_values(rows.iter().flat_map(|r| r.audio.iter().copied()));
    let audio = FixedSizeListArray::try_new(item(DataType::Float32), audio_len as i32, Arc::new(audio_values), None).map_err(|e| e.to_string())?;

    let all_frames: Vec<&Frame> = rows.iter().flat_map(|r| &r.frames).collect();
    let frame_struct = StructArray::try_new(
        frame_struct_fields(),
        vec![
            Arc::new(BinaryArray::from_iter_values(all_frames.iter().map(|f| f.jpeg.as_slice()))),
            Arc::new(StringArray::from_iter_values(all_frames.iter().map(|f| f.path.as_str()))),
        ],
        None,
    )
    .map_err(|e| e.to_string())?;
    let frames = ListArray::try_new(item(DataType::Struct(frame_struct_fields())), list_offsets(rows, |r| r.frames.len()), Arc::new(frame_struct), None)
        .map_err(|e| e.to_string())?;
    let times = ListArray::try_new(
        item(DataType::Float32),
        list_offsets(rows, |r| r.frame_times.len()),
        Arc::new(Float32Array::from_iter_values(rows.iter().flat_map(|r| r.frame_times.iter().copied()))),
        None,
    )
    .map_err(|e| e.to_string())?;
    let seg_valid = NullBuffer::from(rows.iter().map(|r| r.segment_labels.is_some()).collect::<Vec<_>>());
    let segments = ListArray::try_new(
        item(DataType::Int64),
        list_offsets(rows, |r| r.segment_labels.as_ref().map_or(0, Vec::len)),
        Arc::new(Int64Array::from_iter_values(rows.iter().flat_map(|r| r.segment_labels.iter().flatten().map(|&l| i64::from(l))))),
        (seg_valid.null_count() > 0).then_some(seg_valid),
    )
    .map_err(|e| e.to_string())?;
    let p = |r: &ClipRecord| r.provenance.clone();
    let provs: Vec<Provenance> = rows.iter().map(p).collect();
    let opt_i32 = |f: &dyn Fn(&Provenance) -> Option<u32>| -> ArrayRef { Arc::new(provs.iter().map(|p| f(p).map(|v| v as i32)).collect::<Int32Array>()) };
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.clip_id),
        strings(&|r| r.split.name()),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| i64::from(r.label)))),
        strings(&|r| &r.label_name),
        Arc::new(audio),
        Arc::new(frames),
        Arc::new(times),
        Arc::new(segments),
        strings(&|r| &r.provenance.source_path),
        Arc::new(provs.iter().map(|p| p.audio_source_path.as_deref()).collect::<StringArray>()),
        Arc::new(Int64Array::from_iter_values(provs.iter().map(|p| p.source_bytes as i64))),
        strings(&|r| &r.provenance.source_sha256),
        Arc::new(Float64Array::from_iter_values(provs.iter().map(|p| p.duration_s))),
        Arc::new(provs.iter().map(|p| p.orig_fps).collect::<Float64Array>()),
        opt_i32(&|p| p.orig_width),
        opt_i32(&|p| p.orig_height),
        opt_i32(&|p| p.orig_sample_rate),
        opt_i32(&|p| p.orig_channels),
        Arc::new(provs.iter().map(|p| Some(p.audio_tiled)).collect::<BooleanArray>()),
    ];
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// Typed access to a column of a batch.
pub(crate) fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name:?}"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("column {name:?} has an unexpected type"))
}

/// Decodes every row of a batch that has all columns.
pub(crate) fn from_batch(batch: &RecordBatch) -> Result<Vec<ClipRecord>, String> {
    let s = |name| column::<StringArray>(batch, name);
    let (clip_id, split, label_name) = (s(col::CLIP_ID)?, s(col::SPLIT)?, s(col::LABEL_NAME)?);
    let label = column::<Int64Array>(batch, col::LABEL)?;
    let audio = column::<FixedSizeListArray>(batch, col::AUDIO)?;
    let audio_values = audio.values().as_any().downcast_ref::<Float32Array>().ok_or("audio values are not f32")?;
    let frames = column::<ListArray>(batch, col::FRAMES)?;
    let frame_struct = frames.values().as_any().downcast_ref::<StructArray>().ok_or("frames are not structs")?;
    let frame_bytes = frame_struct.column(0).as_any().downcast_ref::<BinaryArray>().ok_or("frame bytes")?;
    let frame_paths = frame_struct.column(1).as_any().downcast_ref::<StringArray>().ok_or("frame paths")?;
    let times = column::<ListArray>(batch, col::FRAME_TIMES)?;
    let time_values = times.values().as_any().downcast_ref::<Float32Array>().ok_or("frame times")?;
    let segments = column::<ListArray>(batch, col::SEGMENT_LABELS)?;
    let seg_values = segments.values().as_any().downcast_ref::<Int64Array>().ok_or("segment labels")?;
    let (source_path, audio_source, sha) = (s(col::SOURCE_PATH)?, s(col::AUDIO_SOURCE_PATH)?, s(col::SOURCE_SHA256)?);
    let bytes = column::<Int64Array>(batch, col::SOURCE_BYTES)?;
    let duration = column::<Float64Array>(batch, col::DURATION_S)?;
    let fps = column::<Float64Array>(batch, col::ORIG_FPS)?;
    let i32c = |name| column::<Int32Array>(batch, name);
    let (w, h, sr, ch) = (i32c(col::ORIG_WIDTH)?, i32c(col::ORIG_HEIGHT)?, i32c(col::ORIG_SAMPLE_RATE)?, i32c(col::ORIG_CHANNELS)?);
    let tiled = column::<BooleanArray>(batch, col::AUDIO_TILED)?;
    let opt_u32 = |a: &Int32Array, i: usize| a.is_valid(i).then(|| a.value(i) as u32);
    let n = audio.value_length() as usize;
    (0..batch.num_rows())
        .map(|i| {
            let range = |l: &ListArray| {
                let o = l.value_offsets();
                o[i] as usize..o[i + 1] as usize
            };
            Ok(ClipRecord {
                clip_id: clip_id.value(i).to_owned(),
                split: Split::from_name(split.value(i)).ok_or("bad split")?,
                label: label.value(i) as u32,
                label_name: label_name.value(i).to_owned(),
                audio: audio_values.values()[i * n..(i + 1) * n].to_vec(),
                frames: range(frames).map(|j| Frame { jpeg: frame_bytes.value(j).to_vec(), path: frame_paths.value(j).to_owned() }).collect(),
                frame_times: time_values.values()[range(times)].to_vec(),
                segment_labels: segments.is_valid(i).then(|| seg_values.values()[range(segments)].iter().map(|&v| v as u32).collect()),
                provenance: Provenance {
                    source_path: source_path.value(i).to_owned(),
                    audio_source_path: audio_source.is_valid(i).then(|| audio_source.value(i).to_owned()),
                    source_bytes: bytes.value(i) as u64,
                    source_sha256: sha.value(i).to_owned(),
                    duration_s: duration.value(i),
                    orig_fps: fps.is_valid(i).then(|| fps.value(i)),
                    orig_width: opt_u32(w, i),
                    orig_height: opt_u32(h, i),
                    orig_sample_rate: opt_u32(sr, i),
                    orig_channels: opt_u32(ch, i),
                    audio_tiled: tiled.value(i),
                },
            })
        })
        .collect()
}
