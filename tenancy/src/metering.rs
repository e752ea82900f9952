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
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, schema(), None).map_err(err)?;
        writer.write(&batch).map_err(err)?;
        writer.close().map_err(err)?;
        store.put(&path, PutPayload::from(buf)).await?;
        written.push(path);
    }
    Ok(written)
}

/// Sums every record of hours `from_ms..to_ms` (hour starts), of one tenant or all.
pub async fn read(
    store: &dyn ObjectStore,
    tenant: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Row>, MeteringError> {
    let (first, last) = (hour_dir(from_ms.div_euclid(HOUR_MS) * HOUR_MS), hour_dir(to_ms));
    let objects: Vec<_> = store.list(Some(&Path::from(PREFIX))).try_collect().await?;
    let mut sums: BTreeMap<(String, i64, String), f64> = BTreeMap::new();
    for meta in objects {
        let hour = meta
            .location
            .parts()
            .nth(1)
            .map(|p| p.as_ref().to_string())
            .unwrap_or_default();
        if hour < first || hour > last {
            continue;
        }
        let path = meta.location.to_string();
        let bytes = store.get(&meta.location).await?.bytes().await?;
        let perr = |source| MeteringError::Parquet {
            path: path.clone(),
            source,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(perr)?
            .build()
            .map_err(perr)?;
        for batch in reader {
            let batch = batch.map_err(|source| MeteringError::Arrow {
                path: path.clone(),
                source,
            })?;
            let column = |name: &'static str| {
                batch.column_by_name(name).ok_or(MeteringError::Column {
                    path: path.clone(),
                    column: name,
                })
            };
            let typed = |name: &'static str| MeteringError::Column {
                path: path.clone(),
                column: name,
            };
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
                let t = tenants.value(i);
                let h = hours.value(i);
                if tenant.is_some_and(|want| want != t) || h < from_ms.div_euclid(HOUR_MS) * HOUR_MS || h > to_ms {
                    continue;
                }
                *sums
                    .entry((t.to_string(), h, metrics.value(i).to_string()))
                    .or_default() += values.value(i);
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|((tenant, hour_ms, metric), value)| Row {
            tenant,
            hour_ms,
            metric,
            value,
        })
        .collect())
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
    }

    #[test]
    fn splits_requests_by_bytes() {
        let mut shares = split_by_bytes(10.0, &HashMap::from([("a", 3), ("b", 1)]));
        shares.sort_by(|x, y| x.0.cmp(y.0));
        assert_eq!(shares, vec![("a", 7.5), ("b", 2.5)]);
        assert!(split_by_bytes(10.0, &HashMap::new()).is_empty());
    }
}
