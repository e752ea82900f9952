# Least privilege: each role's task role reaches only the prefixes it uses.
#   ingest    writes wal/ (flushes), metering/ (usage); reads wal/, data/ (transaction checks)
#   query     reads wal/, data/ (deliveries); writes wal/ (its trace events), metering/
#   compactor reads, writes and deletes wal/, data/, metering/ (compaction, GC, rollups)
# Every role lists its prefix (a readiness probe's HEAD of a missing key is 404, not 403, only
# with list permission) and uses the bucket's KMS key.
locals {
  store_arn = aws_s3_bucket.store.arn
  objects   = { for p in ["wal", "data", "metering"] : p => "${aws_s3_bucket.store.arn}/${local.prefix}/${p}/*" }
  access = {
    ingest = {
      read   = ["wal", "data"]
      write  = ["wal", "metering"]
      delete = []
    }
    query = {
      read   = ["wal", "data"]
      write  = ["wal", "metering"]
      delete = []
    }
    compactor = {
      read   = ["wal", "data", "metering"]
      write  = ["wal", "data", "metering"]
      delete = ["wal", "data", "metering"]
    }
  }
}

data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "task" {
  for_each           = local.access
  name               = "strata-${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task" {
  for_each = local.access
  statement {
    sid       = "ListOwnPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.store_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.prefix, "${local.prefix}/*"]
    }
  }
  statement {
    sid       = "ReadinessProbe"
    actions   = ["s3:GetObject"]
    resources = ["${local.store_arn}/${local.prefix}/readyz-probe"]
  }
  statement {
    sid       = "Read"
    actions   = ["s3:GetObject"]
    resources = [for p in each.value.read : local.objects[p]]
  }
  statement {
    sid       = "Write"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = [for p in each.value.write : local.objects[p]]
  }
  dynamic "statement" {
    for_each = length(each.value.delete) > 0 ? [each.value.delete] : []
    content {
      sid       = "Delete"
      actions   = ["s3:DeleteObject"]
      resources = [for p in statement.value : local.objects[p]]
    }
  }
  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.strata.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.access
  name     = "store"
  role     = aws_iam_role.task[each.key].id
  policy   = data.aws_iam_policy_document.task[each.key].json
}

# What ECS itself needs to start a task: pull the image, write logs, read the node secret.
resource "aws_iam_role" "execution" {
  name               = "strata-${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.task_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "NodeSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.node.arn]
  }
  statement {
    sid       = "SecretKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.strata.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "node-secret"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
