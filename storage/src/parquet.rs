//! Compacted queue files: one Parquet file per (tenant, topic, queue) offset range, which
//! serve consumers (one row group is one cached block) and analytics engines alike (DuckDB,
//! Spark, pyarrow read them as they are). The schema is versioned and documented in
//! docs/archive.md; persisted: add columns at the end, never change one.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, Int32Builder, Int64Builder, ListBuilder, MapBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::wal::WalRecord;

/// Persisted in every file's key-value metadata as `strata.schema_version`.
pub const SCHEMA_VERSION: &str = "1";

/// A row group is cut when its in-memory size reaches this (or `MAX_ROWS`): small enough
/// that a consumer reading a few messages fetches ~1 MiB, big enough for analytics scans.
const ROW_GROUP_BYTES: usize = 1 << 20;
const MAX_ROWS: usize = 4096;
/// Records converted to Arrow at a time.
const WRITE_BATCH: usize = 256;

fn utc_ms() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn properties_field() -> Field {
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    Field::new(
        "properties",
        DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false),
        false,
    )
}

/// The file schema, version 1.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("offset", DataType::Int64, false),
        Field::new("message_id", DataType::Utf8, false),
        Field::new("tag", DataType::Utf8, true),
        Field::new(
            "keys",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("message_group", DataType::Utf8, true),
        properties_field(),
        Field::new("body", DataType::Binary, false),
        Field::new("born_timestamp", utc_ms(), false),
        Field::new("store_timestamp", utc_ms(), false),
        Field::new("delivery_timestamp", utc_ms(), true),
        Field::new("born_host", DataType::Utf8, false),
        Field::new("message_type", DataType::Int32, false),
        Field::new("reconsume_count", DataType::Int32, false),
        Field::new("trace_context", DataType::Utf8, true),
        Field::new("body_encoding", DataType::Int32, false),
        Field::new("body_md5", DataType::Utf8, false),
        Field::new("lite_topic", DataType::Utf8, true),
        Field::new("priority", DataType::Int32, true),
    ]))
}

fn to_batch(schema: &SchemaRef, rows: &[(i64, &WalRecord)]) -> Result<RecordBatch> {
    let mut offset = Int64Builder::new();
    let mut message_id = StringBuilder::new();
    let mut tag = StringBuilder::new();
    let mut keys = ListBuilder::new(StringBuilder::new());
    let mut group = StringBuilder::new();
    let mut props = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut body = BinaryBuilder::new();
    let (mut born, mut store, mut delivery) = (
        TimestampMillisecondBuilder::new(),
        TimestampMillisecondBuilder::new(),
        TimestampMillisecondBuilder::new(),
    );
    let mut born_host = StringBuilder::new();
    let (mut message_type, mut reconsume, mut encoding, mut priority) = (
        Int32Builder::new(),
        Int32Builder::new(),
        Int32Builder::new(),
        Int32Builder::new(),
    );
    let (mut trace, mut md5, mut lite) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    for (o, r) in rows {
        offset.append_value(*o);
        message_id.append_value(&r.message_id);
        tag.append_option(r.tag.as_deref());
        for k in &r.keys {
            keys.values().append_value(k);
        }
        keys.append(true);
        group.append_option(r.message_group.as_deref());
        let mut sorted: Vec<_> = r.user_properties.iter().collect();
        sorted.sort();
        for (k, v) in sorted {
            props.keys().append_value(k);
            props.values().append_value(v);
        }
        props
            .append(true)
            .map_err(|e| Error::Cache(format!("building a parquet map: {e}")))?;
        body.append_value(&r.body);
        born.append_value(r.born_timestamp_ms);
        store.append_value(r.store_timestamp_ms);
        delivery.append_option(r.delivery_timestamp_ms);
        born_host.append_value(&r.born_host);
        message_type.append_value(r.message_type);
        reconsume.append_value(r.reconsume_count);
        trace.append_option(r.trace_context.as_deref());
        encoding.append_value(r.body_encoding);
        md5.append_value(&r.body_md5);
        lite.append_option(r.lite_topic.as_deref());
        priority.append_option(r.priority);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(offset.finish()),
        Arc::new(message_id.finish()),
        Arc::new(tag.finish()),
        Arc::new(keys.finish()),
        Arc::new(group.finish()),
        Arc::new(props.finish()),
        Arc::new(body.finish()),
        Arc::new(born.finish().with_timezone("UTC")),
        Arc::new(store.finish().with_timezone("UTC")),
        Arc::new(delivery.finish().with_timezone("UTC")),
        Arc::new(born_host.finish()),
        Arc::new(message_type.finish()),
        Arc::new(reconsume.finish()),
        Arc::new(trace.finish()),
        Arc::new(encoding.finish()),
        Arc::new(md5.finish()),
        Arc::new(lite.finish()),
        Arc::new(priority.finish()),
    ];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| Error::Cache(format!("arrow batch: {e}")))
}

/// A written file: its bytes and the number of rows of each row group.
#[derive(Debug)]
pub struct Written {
    pub bytes: Bytes,
    pub row_groups: Vec<u32>,
}

/// Writes records (with their queue offsets, ascending) into one Parquet file.
/// `labels` (tenant, topic, queue …) go into the file's metadata as `strata.{label}`.
pub fn write_file(rows: &[(i64, WalRecord)], labels: &[(&str, String)]) -> Result<Written> {
    // Labels travel in the Arrow schema's metadata, which the writer also copies into the
    // file's key-value metadata: pyarrow, DuckDB and parquet-tools all see them.
    let mut metadata =
        std::collections::HashMap::from([("strata.schema_version".to_string(), SCHEMA_VERSION.to_string())]);
    metadata.extend(labels.iter().map(|(k, v)| (format!("strata.{k}"), v.clone())));
    let schema: SchemaRef = Arc::new(schema().as_ref().clone().with_metadata(metadata));
    let zstd = ZstdLevel::try_new(1).map_err(|e| Error::Cache(e.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(MAX_ROWS))
        .build();
    let fail = |e: parquet::errors::ParquetError| Error::Cache(format!("writing parquet: {e}"));
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, Arc::clone(&schema), Some(props)).map_err(fail)?;
    for chunk in rows.chunks(WRITE_BATCH) {
        let refs: Vec<(i64, &WalRecord)> = chunk.iter().map(|(o, r)| (*o, r)).collect();
        writer.write(&to_batch(&schema, &refs)?).map_err(fail)?;
        if writer.in_progress_size() >= ROW_GROUP_BYTES {
            writer.flush().map_err(fail)?;
        }
    }
    let meta = writer.close().map_err(fail)?;
    let row_groups = meta.row_groups().iter().map(|g| g.num_rows() as u32).collect();
    Ok(Written {
        bytes: Bytes::from(buf),
        row_groups,
    })
}

fn column<'a>(batch: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::corrupt(path, 0, format!("parquet file lacks column {name}")))
}

/// Rows of a record batch back into records, with their offsets.
pub fn from_batch(batch: &RecordBatch, path: &Path) -> Result<Vec<(i64, WalRecord)>> {
    let bad = |what: &str| Error::corrupt(path, 0, format!("parquet column {what} has an unexpected type"));
    let ints64 = |n: &str| {
        column(batch, n, path)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad(n))
    };
    let ints32 = |n: &str| {
        column(batch, n, path)?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| bad(n))
    };
    let strs = |n: &str| column(batch, n, path)?.as_string_opt::<i32>().ok_or_else(|| bad(n));
    let times = |n: &str| {
        column(batch, n, path)?
            .as_primitive_opt::<TimestampMillisecondType>()
            .ok_or_else(|| bad(n))
    };
    let (offset, message_id, tag, group) = (
        ints64("offset")?,
        strs("message_id")?,
        strs("tag")?,
        strs("message_group")?,
    );
    let keys = column(batch, "keys", path)?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad("keys"))?;
    let props = column(batch, "properties", path)?
        .as_map_opt()
        .ok_or_else(|| bad("properties"))?;
    let body = column(batch, "body", path)?
        .as_binary_opt::<i32>()
        .ok_or_else(|| bad("body"))?;
    let (born, store, delivery) = (
        times("born_timestamp")?,
        times("store_timestamp")?,
        times("delivery_timestamp")?,
    );
    let (born_host, trace, md5, lite) = (
        strs("born_host")?,
        strs("trace_context")?,
        strs("body_md5")?,
        strs("lite_topic")?,
    );
    let (message_type, reconsume, encoding, priority) = (
        ints32("message_type")?,
        ints32("reconsume_count")?,
        ints32("body_encoding")?,
        ints32("priority")?,
    );
    let opt_str = |a: &arrow_array::StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let key_list = keys.value(i);
        let key_strings = key_list.as_string_opt::<i32>().ok_or_else(|| bad("keys"))?;
        let entry = props.value(i);
        let pk = entry
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("properties"))?;
        let pv = entry
            .column(1)
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("properties"))?;
        out.push((
            offset.value(i),
            WalRecord {
                message_id: message_id.value(i).to_string(),
                tag: opt_str(tag, i),
                keys: (0..key_strings.len())
                    .map(|k| key_strings.value(k).to_string())
                    .collect(),
                message_group: opt_str(group, i),
                user_properties: (0..pk.len())
                    .map(|k| (pk.value(k).to_string(), pv.value(k).to_string()))
                    .collect(),
                body: Bytes::copy_from_slice(body.value(i)),
                born_timestamp_ms: born.value(i),
                store_timestamp_ms: store.value(i),
                delivery_timestamp_ms: (!delivery.is_null(i)).then(|| delivery.value(i)),
                born_host: born_host.value(i).to_string(),
                message_type: message_type.value(i),
                reconsume_count: reconsume.value(i),
                trace_context: opt_str(trace, i),
                body_encoding: encoding.value(i),
                body_md5: md5.value(i).to_string(),
                lite_topic: opt_str(lite, i),
                priority: (!priority.is_null(i)).then(|| priority.value(i)),
            },
        ));
    }
    Ok(out)
}

/// Reads a stored Parquet file through the object store, range by range.
struct ObjectFile {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl AsyncFileReader for ObjectFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    /// A row group's column chunks in as few requests as the store allows (object_store
    /// coalesces ranges less than 1 MiB apart).
    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let meta = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// Opens Parquet files and reads their row groups; footers are cached.
#[derive(Clone)]
pub struct ParquetFiles {
    store: Arc<dyn ObjectStore>,
    footers: moka::future::Cache<String, Arc<ParquetMetaData>>,
}

impl ParquetFiles {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            footers: moka::future::Cache::builder().max_capacity(10_000).build(),
        }
    }

    async fn footer(&self, path: &Path, size: u64) -> Result<Arc<ParquetMetaData>> {
        let mut file = ObjectFile {
            store: Arc::clone(&self.store),
            path: path.clone(),
            size,
        };
        self.footers
            .try_get_with(path.to_string(), async move { file.get_metadata(None).await })
            .await
            .map_err(|e| Error::corrupt(path, size, format!("parquet footer: {e}")))
    }

    /// The rows of one row group of the file at `path` (`size` bytes).
    pub async fn row_group(&self, path: &Path, size: u64, row_group: usize) -> Result<Vec<(i64, WalRecord)>> {
        let meta = self.footer(path, size).await?;
        if row_group >= meta.num_row_groups() {
            return Err(Error::corrupt(path, size, format!("no row group {row_group}")));
        }
        let fail = |e: parquet::errors::ParquetError| Error::corrupt(path, 0, format!("parquet: {e}"));
        let reader_meta = ArrowReaderMetadata::try_new(meta, ArrowReaderOptions::new()).map_err(fail)?;
        let file = ObjectFile {
            store: Arc::clone(&self.store),
            path: path.clone(),
            size,
        };
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(file, reader_meta)
            .with_row_groups(vec![row_group])
            .with_batch_size(MAX_ROWS)
            .build()
            .map_err(fail)?;
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(fail)?;
        let mut rows = Vec::new();
        for b in &batches {
            rows.extend(from_batch(b, path)?);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    fn record(i: usize) -> WalRecord {
        WalRecord {
            message_id: format!("id-{i}"),
            tag: i.is_multiple_of(2).then(|| format!("T{i}")),
            keys: (0..i % 3).map(|k| format!("k{k}")).collect(),
            message_group: i.is_multiple_of(5).then(|| "g".to_string()),
            user_properties: [("a".to_string(), i.to_string()), ("b".to_string(), "x".to_string())].into(),
            body: Bytes::from(vec![i as u8; 100 + i * 50]),
            born_timestamp_ms: 1_000 + i as i64,
            store_timestamp_ms: 2_000 + i as i64,
            delivery_timestamp_ms: i.is_multiple_of(4).then_some(9_000),
            born_host: "10.0.0.1".into(),
            message_type: 1,
            reconsume_count: 0,
            trace_context: None,
            body_encoding: 1,
            body_md5: "MD5".into(),
            lite_topic: None,
            priority: (i == 3).then_some(7),
        }
    }

    #[tokio::test]
    async fn round_trips_through_row_groups() {
        let rows: Vec<(i64, WalRecord)> = (0..9000).map(|i| (100 + i as i64, record(i % 40))).collect();
        let written = write_file(&rows, &[("topic", "t".into())]).unwrap();
        assert!(written.row_groups.len() > 2, "{:?}", written.row_groups);
        assert_eq!(written.row_groups.iter().sum::<u32>(), 9000);
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("data/_default/t/0/00000000000000000100.parquet");
        let size = written.bytes.len() as u64;
        store.put(&path, PutPayload::from(written.bytes)).await.unwrap();
        let files = ParquetFiles::new(store);
        let mut back = Vec::new();
        for g in 0..written.row_groups.len() {
            let part = files.row_group(&path, size, g).await.unwrap();
            assert_eq!(part.len() as u32, written.row_groups[g]);
            back.extend(part);
        }
        assert_eq!(back, rows);
        assert!(files.row_group(&path, size, 99).await.is_err());
    }

    #[tokio::test]
    async fn garbage_is_an_error_naming_the_file() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("data/x.parquet");
        store
            .put(&path, PutPayload::from_static(b"not parquet at all"))
            .await
            .unwrap();
        let err = ParquetFiles::new(store).row_group(&path, 18, 0).await.unwrap_err();
        assert!(err.to_string().contains("data/x.parquet"), "{err}");
    }
}
