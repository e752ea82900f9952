terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  tags       = merge({ "app.kubernetes.io/part-of" = "strata", "strata:cluster" = var.name }, var.tags)
  # Every object of the cluster lives under this prefix of the bucket: {prefix}/wal/ (the write
  # log), {prefix}/data/ (compacted Parquet), {prefix}/metering/ (usage records).
  prefix = trim(var.store_prefix, "/")
}
