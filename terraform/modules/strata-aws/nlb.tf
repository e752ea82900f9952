# The clients' access point: an internal network load balancer in front of every ingest and
# query node, gRPC on 8081 (TCP passthrough: HTTP/2 end to end, TLS if the nodes serve it)
# and Remoting on 9876. Any node answers QueryRoute and the 4.x name server requests.
resource "aws_lb" "access" {
  #checkov:skip=CKV_AWS_91:Access logs exist only for TLS listeners of a network load balancer; these pass TCP through.
  #checkov:skip=CKV2_AWS_28:WAF protects HTTP(S) load balancers; this one forwards TCP (gRPC, Remoting).
  name                             = "strata-${var.name}"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.private_subnet_ids
  security_groups                  = [aws_security_group.lb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = true
  tags                             = local.tags
}

locals {
  listeners = var.serve_remoting ? { grpc = 8081, remoting = 9876 } : { grpc = 8081 }
  # One target group per serving role and port: ingest and query tasks register in both.
  target_groups = merge([for role in ["ingest", "query"] : {
    for name, port in local.listeners : "${role}-${name}" => { role = role, port = port, listener = name }
  }]...)
}

resource "aws_lb_target_group" "role" {
  for_each    = local.target_groups
  name        = "strata-${var.name}-${each.key}"
  port        = each.value.port
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  # A stopping node is deregistered when its drain starts (readiness fails); connections it
  # holds get the drain period to finish.
  deregistration_delay = var.drain_period_seconds
  health_check {
    protocol            = "HTTP"
    port                = "8082"
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
  tags = local.tags
}

resource "aws_lb_listener" "access" {
  #checkov:skip=CKV_AWS_2:gRPC and Remoting pass through as TCP; the nodes terminate TLS themselves when tls.cert_file is set.
  #checkov:skip=CKV_AWS_103:No TLS termination at the load balancer (see CKV_AWS_2).
  for_each          = local.listeners
  load_balancer_arn = aws_lb.access.arn
  port              = each.value
  protocol          = "TCP"
  default_action {
    type = "forward"
    forward {
      target_group {
        arn    = aws_lb_target_group.role["ingest-${each.key}"].arn
        weight = 1
      }
      target_group {
        arn    = aws_lb_target_group.role["query-${each.key}"].arn
        weight = 1
      }
    }
  }
  tags = local.tags
}
