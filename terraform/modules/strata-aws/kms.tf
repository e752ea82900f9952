# One customer-managed key encrypts the bucket, the database, the secrets, the logs and the
# alarm topic; rotated yearly.
resource "aws_kms_key" "strata" {
  description             = "StrataMQ ${var.name}: bucket, database, secrets, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "strata" {
  name          = "alias/strata-${var.name}"
  target_key_id = aws_kms_key.strata.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:In a key policy "*" is this key alone; the account statement is what lets IAM policies grant its use.
  #checkov:skip=CKV_AWS_356:In a key policy "*" is this key alone.
  #checkov:skip=CKV_AWS_109:In a key policy "*" is this key alone; administration stays with the account.
  # The account administers the key (IAM policies then grant its use).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
  # CloudWatch Logs encrypts the nodes' log group with it.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/strata/${var.name}"]
    }
  }
  # CloudWatch alarms publish to the encrypted SNS topic.
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}
