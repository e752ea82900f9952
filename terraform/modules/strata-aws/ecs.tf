# The three roles as ECS services on Fargate. Nodes advertise their own task address
# (STRATA_ADVERTISE=auto); clients bootstrap on the load balancer and then reach each node
# directly (the routes name every node), as with Apache RocketMQ brokers.
resource "aws_ecs_cluster" "strata" {
  name = "strata-${var.name}"
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "nodes" {
  name              = "/strata/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.strata.arn
  tags              = local.tags
}

locals {
  sizes = {
    ingest    = { cpu = var.ingest.cpu, memory = var.ingest.memory }
    query     = { cpu = var.query.cpu, memory = var.query.memory }
    compactor = { cpu = var.compactor.cpu, memory = var.compactor.memory }
  }
  desired = { ingest = var.ingest.min, query = var.query.min, compactor = var.compactor.count }
  secret  = aws_secretsmanager_secret.node.arn
  container = { for role, size in local.sizes : role => {
    name      = "strata"
    image     = var.image
    essential = true
    command   = [role]
    user      = "65532:65532"
    # The image's root filesystem stays read-only; the data folder (disk cache) is the task's
    # ephemeral storage.
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "data", containerPath = "/var/lib/strata", readOnly = false }]
    portMappings = concat(
      [{ containerPort = 8081, protocol = "tcp" }, { containerPort = 8082, protocol = "tcp" }],
      var.serve_remoting && contains(["ingest", "query"], role) ? [{ containerPort = 9876, protocol = "tcp" }] : [],
    )
    environment = concat([
      { name = "STRATA_STORE", value = "s3://${aws_s3_bucket.store.bucket}/${local.prefix}" },
      { name = "AWS_REGION", value = local.region },
      { name = "STRATA_ADVERTISE", value = "auto" },
      { name = "STRATA_GRPC_LISTEN", value = "0.0.0.0:8081" },
      { name = "STRATA_HTTP_LISTEN", value = "0.0.0.0:8082" },
      { name = "STRATA_LOG_FORMAT", value = "json" },
      { name = "STRATA_DRAIN_PERIOD", value = "${var.drain_period_seconds}s" },
      { name = "STRATA_INGEST_MAX_FLUSH_RATE", value = tostring(var.max_flush_rate) },
      # Three quarters of the task's memory; the rest is the runtime's and the page cache's.
      { name = "STRATA_MEMORY_BUDGET", value = tostring(floor(size.memory * 0.75) * 1048576) },
      ], var.serve_remoting && contains(["ingest", "query"], role) ? [
      { name = "STRATA_REMOTING_LISTEN", value = "0.0.0.0:9876" },
      { name = "STRATA_REMOTING_ADVERTISE", value = "auto:9876" },
    ] : [])
    secrets = [for key in ["STRATA_COORDINATOR", "STRATA_AUTH_AT_REST_KEY", "STRATA_AUTH_ADMIN_ACCESS_KEY", "STRATA_AUTH_ADMIN_SECRET_KEY"] :
      { name = key, valueFrom = "${local.secret}:${key}::" }
    ]
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/strata", "node", "probe"]
      interval    = 10
      timeout     = 6
      retries     = 3
      startPeriod = 20
    }
    # SIGTERM, then the drain, then the flush: ECS waits this long before SIGKILL (at most 120).
    stopTimeout = min(var.drain_period_seconds + 25, 120)
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.nodes.name
        awslogs-region        = local.region
        awslogs-stream-prefix = role
      }
    }
  } }
}

resource "aws_ecs_task_definition" "role" {
  for_each                 = local.sizes
  family                   = "strata-${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions    = jsonencode([local.container[each.key]])
  # The disk cache: 1 GiB by default (cache.disk_bytes) within Fargate's 21 GiB minimum.
  volume {
    name = "data"
  }
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  tags = local.tags
}

resource "aws_ecs_service" "role" {
  for_each        = local.sizes
  name            = "strata-${each.key}"
  cluster         = aws_ecs_cluster.strata.id
  task_definition = aws_ecs_task_definition.role[each.key].arn
  launch_type     = "FARGATE"
  desired_count   = local.desired[each.key]
  # A new task starts before an old one drains: capacity never dips during a deployment.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = contains(["ingest", "query"], each.key) ? 30 : null
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.nodes.id]
    assign_public_ip = false
  }
  dynamic "load_balancer" {
    for_each = contains(["ingest", "query"], each.key) ? (var.serve_remoting ? ["grpc", "remoting"] : ["grpc"]) : []
    content {
      target_group_arn = aws_lb_target_group.role["${each.key}-${load_balancer.value}"].arn
      container_name   = "strata"
      container_port   = load_balancer.value == "grpc" ? 8081 : 9876
    }
  }
  # The autoscalers own the count of ingest and query tasks.
  lifecycle {
    ignore_changes = [desired_count]
  }
  tags = local.tags
}
