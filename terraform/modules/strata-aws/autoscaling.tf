# Ingest and query scale on CPU (target tracking: out within a minute or two, in slowly);
# with the nodes' Prometheus metrics in CloudWatch (an ADOT or CloudWatch agent sidecar
# publishing to var.metrics_namespace), also on ingest in-flight bytes and query long polls.
resource "aws_appautoscaling_target" "role" {
  for_each           = { ingest = var.ingest, query = var.query }
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.strata.name}/${aws_ecs_service.role[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min
  max_capacity       = each.value.max
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = { ingest = var.ingest, query = var.query }
  name               = "strata-${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.role[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.role[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.role[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = each.value.cpu_target
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    scale_out_cooldown = 60
    # A node leaving takes the drain period; one removal at a time, five minutes apart.
    scale_in_cooldown = 300
  }
}

locals {
  # Per role: the node metric and the average per task to hold it at.
  custom_targets = var.metrics_namespace == null ? {} : {
    ingest = { metric = "strata_ingest_inflight_bytes", target = 64 * 1048576 }
    query  = { metric = "strata_query_long_polls", target = 2000 }
  }
}

resource "aws_appautoscaling_policy" "load" {
  for_each           = local.custom_targets
  name               = "strata-${var.name}-${each.key}-${each.value.metric}"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.role[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.role[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.role[each.key].scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value = each.value.target
    customized_metric_specification {
      metric_name = each.value.metric
      namespace   = var.metrics_namespace
      statistic   = "Average"
      dimensions {
        name  = "ServiceName"
        value = aws_ecs_service.role[each.key].name
      }
    }
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}
