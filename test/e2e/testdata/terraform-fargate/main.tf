# The shape most ECS Terraform takes: a cluster with the Fargate capacity
# providers, a FARGATE task definition (awsvpc, task-level cpu/memory, an
# execution role) and two services — one with launch_type FARGATE, one on a
# FARGATE_SPOT strategy — waiting for steady state. Applied by
# TestTerraformFargate against `ecsd dev`'s Fargate pool; never leaves loopback.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "endpoint" {
  type = string
}

variable "cluster" {
  type = string
}

variable "image" {
  type = string
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
  name = var.cluster

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = 1
    weight            = 1
  }
}

resource "aws_ecs_task_definition" "app" {
  family                   = "${var.cluster}-app"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name      = "app"
      image     = var.image
      essential = true
      command   = ["httpd", "-f", "-p", "8080", "-h", "/etc"]
      portMappings = [
        { containerPort = 8080, protocol = "tcp" }
      ]
      environment = [
        { name = "STAGE", value = "test" }
      ]
      # As nearly every Fargate example has it; with no --awslogs-endpoint the
      # agent logs to json-file instead of reaching for CloudWatch.
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = "/ecs/app"
          awslogs-region        = "us-east-1"
          awslogs-stream-prefix = "app"
        }
      }
    }
  ])
}

resource "aws_ecs_service" "app" {
  name                  = "app"
  cluster               = aws_ecs_cluster.main.id
  task_definition       = aws_ecs_task_definition.app.arn
  desired_count         = 2
  launch_type           = "FARGATE"
  platform_version      = "LATEST"
  wait_for_steady_state = true

  network_configuration {
    subnets          = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    security_groups  = ["sg-0123456789abcdef0"]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_ecs_cluster_capacity_providers.main]
}

resource "aws_ecs_service" "spot" {
  name                  = "spot"
  cluster               = aws_ecs_cluster.main.id
  task_definition       = aws_ecs_task_definition.app.arn
  desired_count         = 1
  wait_for_steady_state = true

  capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = 1
  }

  network_configuration {
    subnets = ["subnet-0123456789abcdef0"]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.main]
}
