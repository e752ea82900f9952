output "endpoint" {
  description = "Where clients bootstrap: the load balancer's gRPC address (5.x SDKs' endpoint)."
  value       = "${aws_lb.access.dns_name}:8081"
}

output "name_server" {
  description = "Where 4.x clients find the name server (Remoting), if served."
  value       = var.serve_remoting ? "${aws_lb.access.dns_name}:9876" : null
}

output "bucket" {
  description = "The store bucket and prefix (STRATA_STORE)."
  value       = "s3://${aws_s3_bucket.store.bucket}/${local.prefix}"
}

output "coordinator_address" {
  description = "The PostgreSQL coordinator's address."
  value       = "${aws_db_instance.coordinator.address}:${aws_db_instance.coordinator.port}"
}

output "node_secret_arn" {
  description = "Secrets Manager secret with the coordinator URL, the at-rest key and the operator's credentials (STRATA_AUTH_ADMIN_*)."
  value       = aws_secretsmanager_secret.node.arn
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}
