# What the nodes read at start as environment variables (ECS injects them; they are not in
# the task definition): the coordinator URL with its password, the key that seals users'
# secret keys, and the operator's credentials.
resource "random_id" "at_rest_key" {
  byte_length = 32
}

resource "random_password" "admin_secret_key" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "node" {
  #checkov:skip=CKV2_AWS_57:Rotating the coordinator password needs every node restarted with it; rotate by replacing random_password.db and rolling the services.
  name                    = "strata/${var.name}/node"
  description             = "StrataMQ ${var.name}: coordinator URL, at-rest key, operator credentials"
  kms_key_id              = aws_kms_key.strata.arn
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "node" {
  secret_id = aws_secretsmanager_secret.node.id
  secret_string = jsonencode({
    STRATA_COORDINATOR           = "postgres://strata:${random_password.db.result}@${aws_db_instance.coordinator.address}:${aws_db_instance.coordinator.port}/strata?sslmode=require"
    STRATA_AUTH_AT_REST_KEY      = random_id.at_rest_key.hex
    STRATA_AUTH_ADMIN_ACCESS_KEY = "strata-admin"
    STRATA_AUTH_ADMIN_SECRET_KEY = random_password.admin_secret_key.result
  })
}
