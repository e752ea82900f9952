# Alarms on what tells an operator the service is in trouble, to one SNS topic.
resource "aws_sns_topic" "alarms" {
  name              = "strata-${var.name}-alarms"
  kms_master_key_id = aws_kms_key.strata.id
  tags              = local.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# Ingest or query saturated: the autoscaler is at its maximum and CPU stays high.
resource "aws_cloudwatch_metric_alarm" "cpu" {
  for_each            = toset(["ingest", "query"])
  alarm_name          = "strata-${var.name}-${each.key}-cpu"
  alarm_description   = "StrataMQ ${each.key} nodes above 85% CPU for 10 minutes: raise ${each.key}.max or the task size."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.strata.name, ServiceName = aws_ecs_service.role[each.key].name }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  threshold           = 85
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# Fewer running tasks than asked for (crash loops, no capacity, image pull failures).
resource "aws_cloudwatch_metric_alarm" "tasks" {
  for_each            = local.desired
  alarm_name          = "strata-${var.name}-${each.key}-tasks"
  alarm_description   = "StrataMQ ${each.key}: fewer than ${each.value} tasks running for 5 minutes."
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = aws_ecs_cluster.strata.name, ServiceName = aws_ecs_service.role[each.key].name }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  threshold           = each.value
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# Nodes behind the load balancer failing /readyz (the coordinator or the store unreachable).
resource "aws_cloudwatch_metric_alarm" "unhealthy" {
  for_each            = aws_lb_target_group.role
  alarm_name          = "strata-${var.name}-${each.key}-unhealthy"
  alarm_description   = "StrataMQ ${each.key}: a node has failed /readyz for 3 minutes (its log says why)."
  namespace           = "AWS/NetworkELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = aws_lb.access.arn_suffix, TargetGroup = each.value.arn_suffix }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# The coordinator: every flush, receive batch and ack group commits there.
resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name          = "strata-${var.name}-coordinator-cpu"
  alarm_description   = "StrataMQ coordinator above 80% CPU for 10 minutes: a larger db_instance_class, or longer ingest.linger (fewer flush commits)."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.coordinator.identifier }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "db_storage" {
  alarm_name          = "strata-${var.name}-coordinator-storage"
  alarm_description   = "StrataMQ coordinator below 5 GiB free storage."
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.coordinator.identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 5 * 1073741824
  comparison_operator = "LessThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "db_write_latency" {
  alarm_name          = "strata-${var.name}-coordinator-write-latency"
  alarm_description   = "StrataMQ coordinator writes above 20 ms for 5 minutes: every send waits for one."
  namespace           = "AWS/RDS"
  metric_name         = "WriteLatency"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.coordinator.identifier }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  threshold           = 0.02
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}
