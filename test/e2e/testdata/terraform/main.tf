# An ECS cluster and a Fargate task definition, applied against ecsd by
# TestTerraform (terraform_test.go). The provider never leaves loopback: the ECS
# endpoint is ecsd and every lookup that would call another AWS service is off.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "endpoint" {
  type        = string
  description = "ecsd's API URL"
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {
    ecs = var.endpoint
  }
}

resource "aws_ecs_cluster" "main" {
  name = "e2e-tf"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = {
    env  = "e2e"
    team = "platform"
  }
}

resource "aws_ecs_task_definition" "web" {
  family                   = "e2e-tf-web"
  cpu                      = "256"
  memory                   = "512"
  network_mode             = "awsvpc"
  requires_compatibilities = ["FARGATE"]

  container_definitions = jsonencode([
    {
      name      = "web"
      image     = "busybox:latest"
      essential = true
      command   = ["httpd", "-f", "-p", "8080"]
      portMappings = [
        { containerPort = 8080, protocol = "tcp" }
      ]
      environment = [
        { name = "GREETING", value = "hello" }
      ]
      healthCheck = {
        command     = ["CMD-SHELL", "wget -q -O /dev/null http://localhost:8080/ || exit 1"]
        interval    = 10
        timeout     = 5
        retries     = 3
        startPeriod = 5
      }
    }
  ])

  tags = {
    env = "e2e"
  }
}

output "cluster_arn" {
  value = aws_ecs_cluster.main.arn
}

output "task_definition_arn" {
  value = aws_ecs_task_definition.web.arn
}
