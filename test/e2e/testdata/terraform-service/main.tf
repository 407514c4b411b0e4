# A cluster, a bridge-mode busybox httpd task definition and a service of two
# tasks with the deployment circuit breaker, applied against ecsd by
# TestTerraformService (services_test.go). An agent joins the cluster as soon as
# Terraform creates it; wait_for_steady_state makes apply wait until both tasks
# run. The provider never leaves loopback.

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

variable "cluster" {
  type        = string
  description = "the cluster the test's agent joins"
}

variable "image" {
  type        = string
  description = "a local busybox image"
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
}

resource "aws_ecs_task_definition" "web" {
  family       = "${var.cluster}-web"
  network_mode = "bridge"

  container_definitions = jsonencode([
    {
      name      = "web"
      image     = var.image
      memory    = 32
      essential = true
      command   = ["httpd", "-f", "-p", "8080", "-h", "/etc"]
      portMappings = [
        { containerPort = 8080, hostPort = 0, protocol = "tcp" }
      ]
    }
  ])
}

resource "aws_ecs_service" "web" {
  name                  = "web"
  cluster               = aws_ecs_cluster.main.id
  task_definition       = aws_ecs_task_definition.web.arn
  desired_count         = 2
  wait_for_steady_state = true

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

output "service_id" {
  value = aws_ecs_service.web.id
}
