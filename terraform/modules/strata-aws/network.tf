# Who reaches what: clients -> nodes (gRPC 8081, Remoting 9876) directly and through the load
# balancer; the load balancer's health checks -> nodes (HTTP 8082); nodes -> coordinator
# (5432); nodes -> S3, Secrets Manager, ECR, logs (HTTPS 443, through NAT or VPC endpoints).
resource "aws_security_group" "nodes" {
  name        = "strata-${var.name}-nodes"
  description = "StrataMQ ${var.name} nodes"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients_grpc" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.nodes.id
  description       = "RocketMQ 5.x clients (gRPC)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 8081
  to_port           = 8081
}

resource "aws_vpc_security_group_ingress_rule" "clients_remoting" {
  for_each          = var.serve_remoting ? toset(var.client_cidrs) : toset([])
  security_group_id = aws_security_group.nodes.id
  description       = "RocketMQ 4.x clients (Remoting)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9876
  to_port           = 9876
}

# Nodes forward requests to one another (a receive reaching an ingest node goes to a query node).
resource "aws_vpc_security_group_ingress_rule" "nodes_grpc" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "node to node (gRPC)"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
}

resource "aws_vpc_security_group_ingress_rule" "health_checks" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "load balancer health checks (/readyz)"
  referenced_security_group_id = aws_security_group.lb.id
  ip_protocol                  = "tcp"
  from_port                    = 8082
  to_port                      = 8082
}

resource "aws_vpc_security_group_ingress_rule" "lb_grpc" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "load balancer (gRPC)"
  referenced_security_group_id = aws_security_group.lb.id
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
}

resource "aws_vpc_security_group_ingress_rule" "lb_remoting" {
  count                        = var.serve_remoting ? 1 : 0
  security_group_id            = aws_security_group.nodes.id
  description                  = "load balancer (Remoting)"
  referenced_security_group_id = aws_security_group.lb.id
  ip_protocol                  = "tcp"
  from_port                    = 9876
  to_port                      = 9876
}

resource "aws_vpc_security_group_egress_rule" "nodes_https" {
  security_group_id = aws_security_group.nodes.id
  description       = "S3, Secrets Manager, ECR, CloudWatch Logs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "nodes_coordinator" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "the coordinator"
  referenced_security_group_id = aws_security_group.coordinator.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "nodes_nodes" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "node to node (gRPC)"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 8081
  to_port                      = 8081
}

resource "aws_security_group" "coordinator" {
  name        = "strata-${var.name}-coordinator"
  description = "StrataMQ ${var.name} coordinator (PostgreSQL)"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "coordinator_nodes" {
  security_group_id            = aws_security_group.coordinator.id
  description                  = "StrataMQ nodes"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_security_group" "lb" {
  name        = "strata-${var.name}-lb"
  description = "StrataMQ ${var.name} load balancer"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "lb_clients_grpc" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.lb.id
  description       = "RocketMQ 5.x clients (gRPC)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 8081
  to_port           = 8081
}

resource "aws_vpc_security_group_ingress_rule" "lb_clients_remoting" {
  for_each          = var.serve_remoting ? toset(var.client_cidrs) : toset([])
  security_group_id = aws_security_group.lb.id
  description       = "RocketMQ 4.x clients (Remoting)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9876
  to_port           = 9876
}

resource "aws_vpc_security_group_egress_rule" "lb_nodes" {
  for_each                     = toset(var.serve_remoting ? ["8081", "8082", "9876"] : ["8081", "8082"])
  security_group_id            = aws_security_group.lb.id
  description                  = "to the nodes (${each.value})"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}
