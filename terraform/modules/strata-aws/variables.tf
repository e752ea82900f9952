variable "name" {
  description = "Name of the cluster: prefixes every resource (letters, digits and hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: 2-31 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the nodes, the database and the load balancer live in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets in at least two availability zones (nodes, database, internal load balancer)."
  type        = list(string)
  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids: at least two subnets, in different availability zones."
  }
}

variable "client_cidrs" {
  description = "Networks the RocketMQ clients connect from. Routes name each node's own address, so clients must reach the nodes' subnets, not only the load balancer."
  type        = list(string)
}

variable "image" {
  description = "The strata image (built from infra/docker/Dockerfile), preferably pinned by digest: registry/strata@sha256:..."
  type        = string
}

variable "bucket_name" {
  description = "Name of the S3 bucket created for the cluster (globally unique)."
  type        = string
}

variable "store_prefix" {
  description = "Prefix of the cluster's objects in the bucket; several clusters may share a bucket under different prefixes."
  type        = string
  default     = "strata"
}

variable "data_transition_days" {
  description = "Days after which compacted Parquet files (data/) move to S3 Standard-IA (cheaper storage, per-GB retrieval). 0 keeps them in Standard. Worth it when consumers rarely read messages this old."
  type        = number
  default     = 30
}

variable "metering_retention_days" {
  description = "Days usage records (metering/) are kept for billing; they move to Standard-IA after 30 days."
  type        = number
  default     = 400
}

variable "ingest" {
  description = "Ingest nodes (producers' sends): Fargate size and autoscaling bounds. Sizing per node: docs/deploy.md."
  type = object({
    cpu        = optional(number, 1024)
    memory     = optional(number, 2048)
    min        = optional(number, 2)
    max        = optional(number, 10)
    cpu_target = optional(number, 60)
  })
  default = {}
}

variable "query" {
  description = "Query nodes (consumers): Fargate size and autoscaling bounds."
  type = object({
    cpu        = optional(number, 1024)
    memory     = optional(number, 2048)
    min        = optional(number, 2)
    max        = optional(number, 10)
    cpu_target = optional(number, 60)
  })
  default = {}
}

variable "compactor" {
  description = "Compactors (Parquet compaction, timers, GC): Fargate size and count. Jobs are leased, so two share the work and survive the loss of one."
  type = object({
    cpu    = optional(number, 1024)
    memory = optional(number, 2048)
    count  = optional(number, 2)
  })
  default = {}
}

variable "max_flush_rate" {
  description = "Most WAL PUTs per second per ingest node (ingest.max_flush_rate). The main line of the S3 bill is at most this x $13 per ingest node-month on S3 Standard; lower batches more messages per PUT under load at the price of send latency (docs/deploy.md, cost model)."
  type        = number
  default     = 20
  validation {
    condition     = var.max_flush_rate > 0
    error_message = "max_flush_rate: flushes per second, above 0."
  }
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class of the coordinator. db.r6g.large carries ~20,000 coordinator transactions/s (one per flush or receive, not per message)."
  type        = string
  default     = "db.r6g.large"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the coordinator database (it grows automatically up to 10x). It holds offsets, batch locations and the 10-minute message index, not message bodies."
  type        = number
  default     = 50
}

variable "serve_remoting" {
  description = "Also serve RocketMQ 4.x clients (Remoting) on port 9876 of every ingest and query node and of the load balancer."
  type        = bool
  default     = true
}

variable "drain_period_seconds" {
  description = "How long a stopping node serves while out of every route (cluster.drain_period). 35 s covers the clients' 30 s route refresh; the task's stop timeout is this + 25 s."
  type        = number
  default     = 35
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarms' SNS topic (each confirms by email)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the nodes' logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the nodes' Prometheus metrics are published to (with a ServiceName dimension) by a collector sidecar, or null. When set, ingest also scales on strata_ingest_inflight_bytes (64 MiB per task) and query on strata_query_long_polls (2,000 per task)."
  type        = string
  default     = null
}
