# A StrataMQ cluster in an existing VPC: `terraform init && terraform apply` with the values of
# terraform.tfvars. Build and push the image first (infra/docker/Dockerfile).
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  region = var.region
}

module "strata" {
  source             = "../../modules/strata-aws"
  name               = var.name
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  client_cidrs       = var.client_cidrs
  image              = var.image
  bucket_name        = var.bucket_name
  alarm_emails       = var.alarm_emails
  ingest             = { min = 2, max = 10 }
  query              = { min = 2, max = 10 }
  compactor          = { count = 2 }
}

output "endpoint" {
  description = "Point the RocketMQ 5.x SDKs here."
  value       = module.strata.endpoint
}

output "name_server" {
  description = "Point the RocketMQ 4.x SDKs' name server here."
  value       = module.strata.name_server
}
