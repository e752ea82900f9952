variable "region" {
  description = "AWS region."
  type        = string
}

variable "name" {
  description = "Cluster name (prefixes every resource)."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets in two or more availability zones, with a NAT gateway or VPC endpoints for S3, Secrets Manager, ECR and CloudWatch Logs."
  type        = list(string)
}

variable "client_cidrs" {
  description = "Networks the RocketMQ clients connect from."
  type        = list(string)
}

variable "image" {
  description = "The strata image, pinned by digest."
  type        = string
}

variable "bucket_name" {
  description = "Globally unique name of the bucket to create."
  type        = string
}

variable "alarm_emails" {
  description = "Who the alarms notify."
  type        = list(string)
  default     = []
}
