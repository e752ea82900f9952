//! Metering records in the object store: each node writes what its [`Meter`](crate::meter)
//! counted as Parquet, one file per hour it touched, under `metering/YYYYMMDDHH/` (DESIGN §3),
//! columns `tenant, hour_ms, node, metric, value`. A report sums every file of the hours asked
//! for; DuckDB reads the same files (`read_parquet('metering/*/*.parquet')`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use futures::TryStreamExt;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use strata_storage::object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};

use crate::meter::{HOUR_MS, Row};

pub const PREFIX: &str = "metering";

#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    #[error("metering object store: {0}")]
    Store(#[from] strata_storage::object_store::Error),
    #[error("metering file {path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("metering file {path}: {source}")]
    Arrow {
        path: String,
        source: arrow_schema::ArrowError,
    },
    #[error("metering file {path}: column {column} missing or of another type")]
    Column { path: String, column: &'static str },
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("tenant", DataType::Utf8, false),
        Field::new("hour_ms", DataType::Int64, false),
        Field::new("node", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// `YYYYMMDDHH` of an hour (UTC): folder names sort by time.
pub fn hour_dir(hour_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(hour_ms)
        .unwrap_or_default()
        .format("%Y%m%d%H")
        .to_string()
}

/// Parquet key-value metadata of a rollup: the files it replaces, one path per line.
const COVERS: &str = "strata.metering.covers";

/// One metering file: its rows and, for a rollup, the files it replaces.
struct File {
    rows: Vec<Row>,
    covers: Vec<String>,
}

fn encode(path: &Path, node: &str, rows: &[&Row], covers: &[String]) -> Result<Vec<u8>, MeteringError> {
    let err = |source| MeteringError::Parquet {
        path: path.to_string(),
        source,
    };
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.tenant.as_str()))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.hour_ms))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|_| node))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.metric.as_str()))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.value))),
        ],
    )
    .map_err(|source| MeteringError::Arrow {
        path: path.to_string(),
        source,
    })?;
    let props = (!covers.is_empty()).then(|| {
        WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(COVERS.to_string(), covers.join("\n"))]))
            .build()
    });
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema(), props).map_err(err)?;
    writer.write(&batch).map_err(err)?;
    writer.close().map_err(err)?;
    Ok(buf)
}

async fn read_file(store: &dyn ObjectStore, location: &Path) -> Result<File, MeteringError> {
    let path = location.to_string();
    let bytes = store.get(location).await?.bytes().await?;
    let perr = |source| MeteringError::Parquet {
        path: path.clone(),
        source,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(perr)?;
    let covers = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == COVERS))
        .and_then(|k| k.value.as_deref())
        .map(|v| v.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for batch in builder.build().map_err(perr)? {
        let batch = batch.map_err(|source| MeteringError::Arrow {
            path: path.clone(),
            source,
        })?;
        let typed = |name: &'static str| MeteringError::Column {
            path: path.clone(),
            column: name,
        };
        let column = |name: &'static str| batch.column_by_name(name).ok_or_else(|| typed(name));
        let tenants = column("tenant")?
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| typed("tenant"))?;
        let hours = column("hour_ms")?
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| typed("hour_ms"))?;
        let metrics = column("metric")?
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| typed("metric"))?;
        let values = column("value")?
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| typed("value"))?;
        for i in 0..batch.num_rows() {
            rows.push(Row {
                tenant: tenants.value(i).to_string(),
                hour_ms: hours.value(i),
                metric: metrics.value(i).to_string(),
                value: values.value(i),
            });
        }
    }
    Ok(File { rows, covers })
}

/// Writes `rows` as one file per hour; returns the paths written.
pub async fn write(
    store: &dyn ObjectStore,
    node: &str,
    rows: &[Row],
    id: ulid::Ulid,
) -> Result<Vec<Path>, MeteringError> {
    let mut by_hour: BTreeMap<i64, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_hour.entry(r.hour_ms).or_default().push(r);
    }
    let mut written = Vec::new();
    for (hour, rows) in by_hour {
        let path = Path::from(format!("{PREFIX}/{}/{node}-{id}.parquet", hour_dir(hour)));
        let buf = encode(&path, node, &rows, &[])?;
        store.put(&path, PutPayload::from(buf)).await?;
        written.push(path);
    }
    Ok(written)
}

/// Metering files read at once by a report or a rollup.
const READ_CONCURRENCY: usize = 16;

/// The metering files by hour folder (`YYYYMMDDHH`), from hour folder `from` on (listing
/// starts there: a report of last week does not list every hour since the first).
async fn files_by_hour(store: &dyn ObjectStore, from: &str) -> Result<BTreeMap<String, Vec<Path>>, MeteringError> {
    let prefix = Path::from(PREFIX);
    let objects: Vec<_> = store
        .list_with_offset(Some(&prefix), &Path::from(format!("{PREFIX}/{from}")))
        .try_collect()
        .await?;
    let mut by_hour: BTreeMap<String, Vec<Path>> = BTreeMap::new();
    for meta in objects {
        let hour = meta
            .location
            .parts()
            .nth(1)
            .map(|p| p.as_ref().to_string())
            .unwrap_or_default();
        by_hour.entry(hour).or_default().push(meta.location);
    }
    Ok(by_hour)
}

fn is_rollup(path: &Path) -> bool {
    path.filename().is_some_and(|f| f.starts_with("rollup-"))
}

/// Reads `paths`, [`READ_CONCURRENCY`] at a time.
async fn read_files(store: &dyn ObjectStore, paths: Vec<&Path>) -> Result<Vec<(Path, File)>, MeteringError> {
    let mut files = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(READ_CONCURRENCY) {
        let read = futures::future::try_join_all(chunk.iter().map(|p| read_file(store, p))).await?;
        files.extend(chunk.iter().map(|p| (*p).clone()).zip(read));
    }
    Ok(files)
}

/// The files of one hour that count, read; and those replaced by a rollup, not read. The
/// hour's rollups are read first: a file one covers is never fetched.
async fn live_files(store: &dyn ObjectStore, paths: &[Path]) -> Result<(Vec<(Path, File)>, Vec<Path>), MeteringError> {
    let (rollups, others): (Vec<&Path>, Vec<&Path>) = paths.iter().partition(|p| is_rollup(p));
    let mut files = read_files(store, rollups).await?;
    let covered: std::collections::HashSet<String> = files.iter().flat_map(|(_, f)| f.covers.clone()).collect();
    let (dead, unread): (Vec<&Path>, Vec<&Path>) = others.into_iter().partition(|p| covered.contains(p.as_ref()));
    files.extend(read_files(store, unread).await?);
    // A rollup covered by a later one (a late file rolled up again) is dead too.
    let covered: std::collections::HashSet<String> = files.iter().flat_map(|(_, f)| f.covers.clone()).collect();
    let (live, dead_rollups): (Vec<_>, Vec<_>) = files.into_iter().partition(|(p, _)| !covered.contains(p.as_ref()));
    let dead = dead
        .into_iter()
        .cloned()
        .chain(dead_rollups.into_iter().map(|(p, _)| p))
        .collect();
    Ok((live, dead))
}

/// 9999-12-31T23:59:59.999Z, the last time an hour folder can be named for.
const LAST_MS: i64 = 253_402_300_799_999;

/// Sums every record of hours `from_ms..to_ms` (hour starts), of one tenant or all.
pub async fn read(
    store: &dyn ObjectStore,
    tenant: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Row>, MeteringError> {
    // Hour folders are named for years 1970 to 9999; a range reaching past them is cut there.
    let (from_ms, to_ms) = (from_ms.clamp(0, LAST_MS), to_ms.clamp(0, LAST_MS));
    let from_hour = from_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let (first, last) = (hour_dir(from_hour), hour_dir(to_ms));
    let mut rows = Vec::new();
    for (hour, paths) in files_by_hour(store, &first).await? {
        if hour < first || hour > last {
            continue;
        }
        let (live, _) = live_files(store, &paths).await?;
        rows.extend(
            live.into_iter()
                .flat_map(|(_, f)| f.rows)
                .filter(|r| tenant.is_none_or(|want| want == r.tenant) && r.hour_ms >= from_hour && r.hour_ms <= to_ms),
        );
    }
    Ok(summed(rows))
}

/// One row per tenant, hour and metric, summed.
fn summed(rows: impl IntoIterator<Item = Row>) -> Vec<Row> {
    let mut sums: BTreeMap<(String, i64, String), f64> = BTreeMap::new();
    for r in rows {
        *sums.entry((r.tenant, r.hour_ms, r.metric)).or_default() += r.value;
    }
    sums.into_iter()
        .map(|((tenant, hour_ms, metric), value)| Row {
            tenant,
            hour_ms,
            metric,
            value,
        })
        .collect()
}

/// Merges the files of every hour that ended before `before_ms` into one rollup file per
/// hour (so a month's report reads ~720 files, not one per node per minute). The rollup
/// names the files it replaces before they are deleted: readers skip replaced files, so a
/// crash between the two steps counts nothing twice. Run by one node at a time (a lease).
/// Returns how many files were replaced.
pub async fn roll_up(store: &dyn ObjectStore, before_ms: i64, id: ulid::Ulid) -> Result<usize, MeteringError> {
    let last = hour_dir(before_ms.div_euclid(HOUR_MS) * HOUR_MS - HOUR_MS);
    let mut replaced = 0;
    for (hour, paths) in files_by_hour(store, "").await? {
        if hour > last || paths.len() < 2 {
            continue;
        }
        let (live, dead) = live_files(store, &paths).await?;
        if live.len() >= 2 {
            let rows = summed(live.iter().flat_map(|(_, f)| f.rows.iter().cloned()));
            let covers: Vec<String> = live.iter().map(|(p, _)| p.to_string()).collect();
            let path = Path::from(format!("{PREFIX}/{hour}/rollup-{id}.parquet"));
            let buf = encode(&path, "rollup", &rows.iter().collect::<Vec<_>>(), &covers)?;
            store.put(&path, PutPayload::from(buf)).await?;
            for (p, _) in &live {
                store.delete(p).await?;
            }
            replaced += live.len();
        }
        for p in &dead {
            store.delete(p).await?;
        }
    }
    Ok(replaced)
}

/// Splits `requests` of one kind between tenants by their share of `bytes` (reads attributed
/// by the bytes each tenant's consumers received in the same interval).
pub fn split_by_bytes<'a>(requests: f64, bytes: &HashMap<&'a str, u64>) -> Vec<(&'a str, f64)> {
    let total: u64 = bytes.values().sum();
    if total == 0 {
        return Vec::new();
    }
    bytes
        .iter()
        .map(|(t, b)| (*t, requests * *b as f64 / total as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use strata_storage::object_store::memory::InMemory;

    fn row(tenant: &str, hour: i64, metric: &str, value: f64) -> Row {
        Row {
            tenant: tenant.into(),
            hour_ms: hour * HOUR_MS,
            metric: metric.into(),
            value,
        }
    }

    #[tokio::test]
    async fn files_per_hour_sum_up_per_tenant() {
        let store = InMemory::new();
        let h = 490_000; // 2025-11-24T16:00Z
        let first = [
            row("a", h, "bytes_in", 10.0),
            row("b", h, "bytes_in", 5.0),
            row("a", h + 1, "bytes_in", 1.0),
        ];
        let paths = write(&store, "n1", &first, ulid::Ulid::new()).await.unwrap();
        assert_eq!(paths.len(), 2, "one file per hour");
        assert!(paths[0].as_ref().starts_with("metering/2025112416/n1-"), "{}", paths[0]);
        write(&store, "n2", &[row("a", h, "bytes_in", 2.5)], ulid::Ulid::new())
            .await
            .unwrap();

        let a = read(&store, Some("a"), h * HOUR_MS, h * HOUR_MS).await.unwrap();
        assert_eq!(a, vec![row("a", h, "bytes_in", 12.5)], "both nodes, that hour only");
        let all = read(&store, None, h * HOUR_MS, (h + 1) * HOUR_MS).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(
            read(&store, None, (h + 5) * HOUR_MS, (h + 6) * HOUR_MS)
                .await
                .unwrap()
                .is_empty()
        );
        let everything = read(&store, None, i64::MIN, i64::MAX).await.unwrap();
        assert_eq!(
            everything.len(),
            3,
            "a range past the folders' years is cut, not emptied"
        );
    }

    #[tokio::test]
    async fn rollups_replace_an_hour_s_files_without_counting_twice() {
        let store = InMemory::new();
        let h = 490_000;
        let count = |store: &InMemory| {
            let store = store.clone();
            async move {
                store
                    .list(Some(&Path::from(PREFIX)))
                    .try_collect::<Vec<_>>()
                    .await
                    .unwrap()
                    .len()
            }
        };
        let part = write(&store, "n1", &[row("a", h, "bytes_in", 10.0)], ulid::Ulid::new())
            .await
            .unwrap();
        write(
            &store,
            "n2",
            &[row("a", h, "bytes_in", 5.0), row("b", h, "api.X", 1.0)],
            ulid::Ulid::new(),
        )
        .await
        .unwrap();
        let before = read(&store, None, h * HOUR_MS, h * HOUR_MS).await.unwrap();
        let now = (h + 3) * HOUR_MS;
        assert_eq!(
            roll_up(&store, (h + 1) * HOUR_MS - 1, ulid::Ulid::new()).await.unwrap(),
            0,
            "hour not over"
        );
        assert_eq!(roll_up(&store, now, ulid::Ulid::new()).await.unwrap(), 2);
        assert_eq!(count(&store).await, 1, "one rollup file");
        assert_eq!(read(&store, None, h * HOUR_MS, h * HOUR_MS).await.unwrap(), before);

        // A replaced file that survived (a crash before its delete) is not counted again.
        let stale = encode(&part[0], "n1", &[&row("a", h, "bytes_in", 10.0)], &[]).unwrap();
        store.put(&part[0], PutPayload::from(stale)).await.unwrap();
        assert_eq!(read(&store, None, h * HOUR_MS, h * HOUR_MS).await.unwrap(), before);
        // A late file counts, and the next rollup takes it in.
        write(&store, "n3", &[row("a", h, "bytes_in", 1.0)], ulid::Ulid::new())
            .await
            .unwrap();
        let late = read(&store, Some("a"), h * HOUR_MS, h * HOUR_MS).await.unwrap();
        assert_eq!(late, vec![row("a", h, "bytes_in", 16.0)]);
        roll_up(&store, now, ulid::Ulid::new()).await.unwrap();
        assert_eq!(count(&store).await, 1);
        assert_eq!(read(&store, Some("a"), h * HOUR_MS, h * HOUR_MS).await.unwrap(), late);
    }

    #[tokio::test]
    async fn a_report_reads_an_hours_rollup_not_the_files_it_replaced() {
        use strata_storage::hooked::Op;
        let (store, counts) = strata_storage::counting::counting(std::sync::Arc::new(InMemory::new()));
        let h = 491_000;
        for node in ["n1", "n2", "n3"] {
            write(&*store, node, &[row("a", h, "bytes_in", 1.0)], ulid::Ulid::new())
                .await
                .unwrap();
        }
        write(&*store, "n1", &[row("a", h - 100, "bytes_in", 1.0)], ulid::Ulid::new())
            .await
            .unwrap();
        roll_up(&*store, (h + 2) * HOUR_MS, ulid::Ulid::new()).await.unwrap();
        let files: Vec<Path> = store
            .list(Some(&Path::from(format!("{PREFIX}/{}", hour_dir(h * HOUR_MS)))))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .unwrap();
        let [rollup] = files.as_slice() else {
            panic!("{files:?}")
        };
        // A replaced file back (a crash between the rollup's PUT and its deletes).
        let replaced = Path::from(read_file(&*store, rollup).await.unwrap().covers[0].as_str());
        let buf = encode(&replaced, "n1", &[&row("a", h, "bytes_in", 100.0)], &[]).unwrap();
        store.put(&replaced, PutPayload::from(buf)).await.unwrap();
        let gets = counts.get(Op::Get);
        let rows = read(&*store, Some("a"), h * HOUR_MS, h * HOUR_MS).await.unwrap();
        assert_eq!(
            rows,
            vec![row("a", h, "bytes_in", 3.0)],
            "the replaced file is not counted"
        );
        assert_eq!(
            counts.get(Op::Get) - gets,
            1,
            "one GET, the rollup's: the replaced file is not read"
        );
    }

    #[test]
    fn splits_requests_by_bytes() {
        let mut shares = split_by_bytes(10.0, &HashMap::from([("a", 3), ("b", 1)]));
        shares.sort_by(|x, y| x.0.cmp(y.0));
        assert_eq!(shares, vec![("a", 7.5), ("b", 2.5)]);
        assert!(split_by_bytes(10.0, &HashMap::new()).is_empty());
    }
}
