# Example values: replace with yours.
region             = "eu-west-1"
name               = "prod"
vpc_id             = "vpc-0123456789abcdef0"
private_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210", "subnet-0a1b2c3d4e5f60789"]
client_cidrs       = ["10.0.0.0/16"]
image              = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/strata@sha256:0000000000000000000000000000000000000000000000000000000000000000"
bucket_name        = "example-corp-strata-prod"
alarm_emails       = ["oncall@example.com"]
