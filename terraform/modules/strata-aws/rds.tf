# The coordinator: PostgreSQL, Multi-AZ (a standby in another zone takes over in ~1-2 min;
# nodes retry and fence by epoch, nothing acknowledged is lost).
resource "aws_db_subnet_group" "coordinator" {
  name       = "strata-${var.name}"
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_db_parameter_group" "coordinator" {
  name   = "strata-${var.name}"
  family = "postgres16"
  # Log statements slower than 500 ms: the coordinator's transactions take ~1-5 ms.
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  tags = local.tags
}

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "aws_db_instance" "coordinator" {
  #checkov:skip=CKV_AWS_161:The nodes sign in with the password kept in Secrets Manager; IAM tokens expire every 15 min and the connection pool would have to renew them.
  identifier                            = "strata-${var.name}"
  engine                                = "postgres"
  engine_version                        = "16"
  instance_class                        = var.db_instance_class
  allocated_storage                     = var.db_allocated_storage_gb
  max_allocated_storage                 = var.db_allocated_storage_gb * 10
  storage_type                          = "gp3"
  storage_encrypted                     = true
  kms_key_id                            = aws_kms_key.strata.arn
  db_name                               = "strata"
  username                              = "strata"
  password                              = random_password.db.result
  multi_az                              = true
  db_subnet_group_name                  = aws_db_subnet_group.coordinator.name
  vpc_security_group_ids                = [aws_security_group.coordinator.id]
  parameter_group_name                  = aws_db_parameter_group.coordinator.name
  publicly_accessible                   = false
  backup_retention_period               = 14
  copy_tags_to_snapshot                 = true
  deletion_protection                   = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "strata-${var.name}-final"
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.strata.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  tags                                  = local.tags
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "strata-${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
