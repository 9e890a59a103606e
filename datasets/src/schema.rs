//! The shard schema: one row per clip. See ARCHITECTURE.md for the table of columns.
//!
//! Decisions (design.md): the spectrogram is a plain `FixedSizeList<float32>` (row-major, shape in
//! the field metadata), not the `arrow.fixed_shape_tensor` extension type, which HF `datasets`
//! refuses; frames are `list<struct{bytes, path}>`, the HF `Image` layout; every field is nullable
//! because HF only honours the `huggingface` metadata then. Provenance is flat columns so SQL
//! engines read it without unnesting.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::catalog::{DatasetKind, Split};
use crate::preset::Preset;
use crate::{SCHEMA_VERSION, TOOL_VERSION};

/// Schema-level metadata keys (also the Parquet file's key-value metadata).
pub mod keys {
    pub const SCHEMA_VERSION: &str = "ogmge.schema_version";
    pub const TOOL_VERSION: &str = "ogmge.tool_version";
    pub const DATASET: &str = "ogmge.dataset";
    pub const SPLIT: &str = "ogmge.split";
    pub const PRESET: &str = "ogmge.preset";
    pub const CLASSES: &str = "ogmge.classes";
    pub const AUDIO_SHAPE: &str = "ogmge.audio_shape";
    pub const HUGGINGFACE: &str = "huggingface";
}

/// Column names.
pub mod col {
    pub const CLIP_ID: &str = "clip_id";
    pub const SPLIT: &str = "split";
    pub const LABEL: &str = "label";
    pub const LABEL_NAME: &str = "label_name";
    pub const AUDIO: &str = "audio";
    pub const FRAMES: &str = "frames";
    pub const FRAME_TIMES: &str = "frame_times";
    pub const SEGMENT_LABELS: &str = "segment_labels";
    pub const SOURCE_PATH: &str = "source_path";
    pub const AUDIO_SOURCE_PATH: &str = "audio_source_path";
    pub const SOURCE_BYTES: &str = "source_bytes";
    pub const SOURCE_SHA256: &str = "source_sha256";
    pub const DURATION_S: &str = "duration_s";
    pub const ORIG_FPS: &str = "orig_fps";
    pub const ORIG_WIDTH: &str = "orig_width";
    pub const ORIG_HEIGHT: &str = "orig_height";
    pub const ORIG_SAMPLE_RATE: &str = "orig_sample_rate";
    pub const ORIG_CHANNELS: &str = "orig_channels";
    pub const AUDIO_TILED: &str = "audio_tiled";
}

/// What a shard file says about itself: enough to interpret every row without other files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardMeta {
    pub dataset: DatasetKind,
    pub split: Split,
    pub preset: Preset,
    pub classes: Vec<String>,
    /// Shape of the `audio` column's matrices, row-major.
    pub audio_shape: [usize; 2],
    pub audio_dims: [String; 2],
}

impl ShardMeta {
    pub fn audio_len(&self) -> usize {
        self.audio_shape[0] * self.audio_shape[1]
    }
}

/// The `frames` list item: the HF `Image` struct.
pub fn frame_struct_fields() -> Fields {
    Fields::from(vec![Field::new("bytes", DataType::Binary, true), Field::new("path", DataType::Utf8, true)])
}

/// The Arrow schema of a shard, with its metadata.
pub fn arrow_schema(meta: &ShardMeta) -> SchemaRef {
    let audio_meta = HashMap::from([("shape".to_owned(), json!(meta.audio_shape).to_string()), ("dim_names".to_owned(), json!(meta.audio_dims).to_string())]);
    let item = |dt: DataType| Arc::new(Field::new("item", dt, true));
    let fields = vec![
        Field::new(col::CLIP_ID, DataType::Utf8, true),
        Field::new(col::SPLIT, DataType::Utf8, true),
        Field::new(col::LABEL, DataType::Int64, true),
        Field::new(col::LABEL_NAME, DataType::Utf8, true),
        Field::new(col::AUDIO, DataType::FixedSizeList(item(DataType::Float32), meta.audio_len() as i32), true).with_metadata(audio_meta),
        Field::new(col::FRAMES, DataType::List(item(DataType::Struct(frame_struct_fields()))), true),
        Field::new(col::FRAME_TIMES, DataType::List(item(DataType::Float32)), true),
        Field::new(col::SEGMENT_LABELS, DataType::List(item(DataType::Int64)), true),
        Field::new(col::SOURCE_PATH, DataType::Utf8, true),
        Field::new(col::AUDIO_SOURCE_PATH, DataType::Utf8, true),
        Field::new(col::SOURCE_BYTES, DataType::Int64, true),
        Field::new(col::SOURCE_SHA256, DataType::Utf8, true),
        Field::new(col::DURATION_S, DataType::Float64, true),
        Field::new(col::ORIG_FPS, DataType::Float64, true),
        Field::new(col::ORIG_WIDTH, DataType::Int32, true),
        Field::new(col::ORIG_HEIGHT, DataType::Int32, true),
        Field::new(col::ORIG_SAMPLE_RATE, DataType::Int32, true),
        Field::new(col::ORIG_CHANNELS, DataType::Int32, true),
        Field::new(col::AUDIO_TILED, DataType::Boolean, true),
    ];
    let metadata = HashMap::from([
        (keys::SCHEMA_VERSION.to_owned(), SCHEMA_VERSION.to_string()),
        (keys::TOOL_VERSION.to_owned(), TOOL_VERSION.to_owned()),
        (keys::DATASET.to_owned(), meta.dataset.name().to_owned()),
        (keys::SPLIT.to_owned(), meta.split.name().to_owned()),
        (keys::PRESET.to_owned(), serde_json::to_string(&meta.preset).expect("preset serialises")),
        (keys::CLASSES.to_owned(), json!(meta.classes).to_string()),
        (keys::AUDIO_SHAPE.to_owned(), json!({"shape": meta.audio_shape, "dim_names": meta.audio_dims}).to_string()),
        (keys::HUGGINGFACE.to_owned(), huggingface_features(meta).to_string()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// HF `datasets` features, so `load_dataset("parquet", ...)` gives a ClassLabel, images and a
/// fixed-length float list without a cast.
fn huggingface_features(meta: &ShardMeta) -> serde_json::Value {
    let value = |dtype: &str| json!({"dtype": dtype, "_type": "Value"});
    let list = |feature: serde_json::Value| json!({"feature": feature, "_type": "List"});
    json!({"info": {"features": {
        col::CLIP_ID: value("string"),
        col::SPLIT: value("string"),
        col::LABEL: {"names": meta.classes, "_type": "ClassLabel"},
        col::LABEL_NAME: value("string"),
        col::AUDIO: {"feature": value("float32"), "length": meta.audio_len(), "_type": "List"},
        col::FRAMES: list(json!({"_type": "Image"})),
        col::FRAME_TIMES: list(value("float32")),
        col::SEGMENT_LABELS: list(value("int64")),
        col::SOURCE_PATH: value("string"),
        col::AUDIO_SOURCE_PATH: value("string"),
        col::SOURCE_BYTES: value("int64"),
        col::SOURCE_SHA256: value("string"),
        col::DURATION_S: value("float64"),
        col::ORIG_FPS: value("float64"),
        col::ORIG_WIDTH: value("int32"),
        col::ORIG_HEIGHT: value("int32"),
        col::ORIG_SAMPLE_RATE: value("int32"),
        col::ORIG_CHANNELS: value("int32"),
        col::AUDIO_TILED: value("bool"),
    }}})
}

/// Reads [`ShardMeta`] back from a schema's metadata.
pub fn shard_meta(schema: &Schema) -> Result<ShardMeta, String> {
    let md = schema.metadata();
    let get = |k: &str| md.get(k).ok_or_else(|| format!("missing schema metadata {k:?}"));
    let version: u32 = get(keys::SCHEMA_VERSION)?.parse().map_err(|_| "bad schema version".to_owned())?;
    if version != SCHEMA_VERSION {
        return Err(format!("shard schema version {version}, this build reads {SCHEMA_VERSION}"));
    }
    let dataset = DatasetKind::from_name(get(keys::DATASET)?).ok_or("unknown dataset")?;
    let split = Split::from_name(get(keys::SPLIT)?).ok_or("unknown split")?;
    let preset = serde_json::from_str(get(keys::PRESET)?).map_err(|e| format!("preset: {e}"))?;
    let classes = serde_json::from_str(get(keys::CLASSES)?).map_err(|e| format!("classes: {e}"))?;
    #[derive(Deserialize)]
    struct Shape {
        shape: [usize; 2],
        dim_names: [String; 2],
    }
    let shape: Shape = serde_json::from_str(get(keys::AUDIO_SHAPE)?).map_err(|e| format!("audio shape: {e}"))?;
    Ok(ShardMeta { dataset, split, preset, classes, audio_shape: shape.shape, audio_dims: shape.dim_names })
}
