# The cluster's only durable storage for messages. Versioned, so an object deleted by mistake
# can be restored for a day; the broker's own GC deletes compacted WAL objects, whose old
# versions then expire.
resource "aws_s3_bucket" "store" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage and PUT costs; the store is already 11-nines durable within its region. Add a replication rule where a regional outage must not stop reads.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: the coordinator, not the bucket, announces new data.
  #checkov:skip=CKV_AWS_18:Access logging writes one log object per few requests, more than the broker's own traffic at low rates; CloudTrail data events are the audit option (docs/deploy.md).
  bucket = var.bucket_name
  tags   = local.tags
}

resource "aws_s3_bucket_versioning" "store" {
  bucket = aws_s3_bucket.store.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "store" {
  bucket = aws_s3_bucket.store.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.strata.arn
    }
    # One KMS request per bucket key period instead of one per object: WAL flushes are many.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "store" {
  bucket                  = aws_s3_bucket.store.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "store" {
  bucket = aws_s3_bucket.store.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Only TLS, only from this account.
resource "aws_s3_bucket_policy" "store" {
  bucket = aws_s3_bucket.store.id
  policy = data.aws_iam_policy_document.store.json
}

data "aws_iam_policy_document" "store" {
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.store.arn, "${aws_s3_bucket.store.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# Lifecycle per prefix. The broker decides when messages expire (topic retention) and deletes
# compacted WAL objects itself; these rules only clean up after it and tier old data.
resource "aws_s3_bucket_lifecycle_configuration" "store" {
  bucket = aws_s3_bucket.store.id

  # wal/: the write log. Objects live minutes to hours (until compacted), so no tiering (IA's
  # 30-day minimum would bill more than it saves); the versions GC deleted go after a day.
  rule {
    id     = "wal"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}/wal/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # data/: compacted Parquet, read by consumers replaying history and by DuckDB/Spark.
  rule {
    id     = "data"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}/data/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    dynamic "transition" {
      for_each = var.data_transition_days > 0 ? [var.data_transition_days] : []
      content {
        days          = transition.value
        storage_class = "STANDARD_IA"
      }
    }
  }

  # metering/: hourly usage records, kept for billing then deleted.
  rule {
    id     = "metering"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}/metering/"
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    transition {
      days          = 30
      storage_class = "STANDARD_IA"
    }
    expiration {
      days = var.metering_retention_days
    }
  }

  # Every prefix: multipart uploads a node started and never finished (it died mid-upload).
  rule {
    id     = "uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
