package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecsd/ecsd/internal/testenv"
)

// capacityTF is a node-group capacity provider with managed scaling and
// termination protection, a cluster, and the cluster's providers (FARGATE,
// FARGATE_SPOT and the node-group one) with a default strategy. The node group
// is created beforehand through ecsd's node group API; its ARN comes in as
// var.asg_arn, as an aws_autoscaling_group's would.
const capacityTF = `
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

variable "asg_arn" {
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

resource "aws_ecs_capacity_provider" "nodes" {
  name = "e2e-nodes"

  auto_scaling_group_provider {
    auto_scaling_group_arn         = var.asg_arn
    managed_termination_protection = "ENABLED"

    managed_scaling {
      status                    = "ENABLED"
      target_capacity           = 90
      minimum_scaling_step_size = 1
      maximum_scaling_step_size = 2
      instance_warmup_period    = 60
    }
  }

  tags = {
    env = "e2e"
  }
}

resource "aws_ecs_cluster" "main" {
  name = "e2e-cap"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT", aws_ecs_capacity_provider.nodes.name]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    base              = 1
    weight            = 1
  }

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE_SPOT"
    weight            = 3
  }
}
`

// nodeGroupTarget is the X-Amz-Target prefix of ecsd's node group API.
const nodeGroupTarget = "EcsdNodeGroups_20261101"

// TestTerraformCapacity applies aws_ecs_capacity_provider (backed by an ecsd
// node group), aws_ecs_cluster and aws_ecs_cluster_capacity_providers with
// Terraform and the offline AWS provider against `ecsd server`; a second plan
// must show no changes, and destroy must leave the provider INACTIVE and the
// cluster deleted.
func TestTerraformCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped in -short mode")
	}
	t.Parallel()
	tf := needTool(t, "terraform")
	mirror := providerMirror(t)
	const account = "111122223333"
	p := startECSD(t, ecsdOpts{Mode: "server", Env: []string{
		"ECSD_ACCESS_KEY_ID=test", "ECSD_SECRET_ACCESS_KEY=test", "ECSD_ACCOUNT_ID=" + account,
	}})
	sdk := testenv.NewClient(p.URL, "test", "test", "us-east-1")
	ctx := context.Background()

	// The node group's instances join their own cluster; the provider is then
	// associated with the Terraform-managed one.
	if _, err := sdk.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("e2e-cap-nodes")}); err != nil {
		t.Fatal(err)
	}
	var created struct {
		NodeGroup capacityNodeGroup `json:"nodeGroup"`
	}
	if err := capacityCall(t, p.URL, nodeGroupTarget+".CreateNodeGroup", map[string]any{
		"name": "e2e-group", "cluster": "e2e-cap-nodes", "minSize": 0, "maxSize": 2, "instanceType": "t3.small",
	}, &created); err != nil {
		t.Fatal(err)
	}
	asgARN := created.NodeGroup.AutoScalingGroupArn
	if !strings.HasPrefix(asgARN, "arn:aws:autoscaling:") {
		t.Fatalf("CreateNodeGroup answered no Auto Scaling group ARN: %+v", created.NodeGroup)
	}

	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(capacityTF), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(terraformEnv(t, t.TempDir(), mirror, p.URL), "TF_VAR_asg_arn="+asgARN)
	terraform := terraformCmd(t, tf, work, env)

	if _, code := terraform(2*time.Minute, "init", "-input=false"); code != 0 {
		t.Fatalf("terraform init exited %d (output above)", code)
	}
	if _, code := terraform(5*time.Minute, "apply", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform apply exited %d (output above)", code)
	}

	// What Terraform wrote is what ecsd stored.
	dp, err := sdk.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{
		CapacityProviders: []string{"e2e-nodes"}, Include: []types.CapacityProviderField{types.CapacityProviderFieldTags},
	})
	if err != nil {
		t.Fatalf("describe-capacity-providers after apply: %v", err)
	}
	if len(dp.CapacityProviders) != 1 {
		t.Fatalf("describe-capacity-providers after apply: %+v", dp)
	}
	cp := dp.CapacityProviders[0]
	if got, want := aws.ToString(cp.CapacityProviderArn), "arn:aws:ecs:us-east-1:"+account+":capacity-provider/e2e-nodes"; got != want {
		t.Errorf("capacity provider ARN = %q, want %q", got, want)
	}
	if cp.Status != types.CapacityProviderStatusActive {
		t.Errorf("capacity provider status = %q, want ACTIVE", cp.Status)
	}
	if a := cp.AutoScalingGroupProvider; a == nil || aws.ToString(a.AutoScalingGroupArn) != asgARN ||
		a.ManagedTerminationProtection != types.ManagedTerminationProtectionEnabled || a.ManagedScaling == nil ||
		a.ManagedScaling.Status != types.ManagedScalingStatusEnabled || aws.ToInt32(a.ManagedScaling.TargetCapacity) != 90 ||
		aws.ToInt32(a.ManagedScaling.MaximumScalingStepSize) != 2 || aws.ToInt32(a.ManagedScaling.InstanceWarmupPeriod) != 60 {
		t.Errorf("auto scaling group provider after apply: %+v", a)
	}
	if got := tagMap(cp.Tags); got["env"] != "e2e" || len(got) != 1 {
		t.Errorf("capacity provider tags = %v, want env=e2e", got)
	}
	dc, err := sdk.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"e2e-cap"}})
	if err != nil || len(dc.Clusters) != 1 {
		t.Fatalf("describe-clusters after apply: %v %+v", err, dc)
	}
	c := dc.Clusters[0]
	if want := []string{"FARGATE", "FARGATE_SPOT", "e2e-nodes"}; !sameSet(c.CapacityProviders, want) {
		t.Errorf("cluster capacity providers = %v, want %v", c.CapacityProviders, want)
	}
	if len(c.DefaultCapacityProviderStrategy) != 2 {
		t.Errorf("cluster default strategy = %+v, want FARGATE base 1 weight 1, FARGATE_SPOT weight 3", c.DefaultCapacityProviderStrategy)
	}

	// A second plan must find nothing to change.
	if out, code := terraform(3*time.Minute, "plan", "-detailed-exitcode", "-input=false"); code != 0 {
		t.Errorf("terraform plan after apply exited %d, want 0 (no changes); the plan shows which attribute differs:\n%s", code, out)
	}

	if _, code := terraform(5*time.Minute, "destroy", "-auto-approve", "-input=false"); code != 0 {
		t.Fatalf("terraform destroy exited %d (output above)", code)
	}
	dp, err = sdk.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{CapacityProviders: []string{"e2e-nodes"}})
	if err != nil {
		t.Fatalf("describe-capacity-providers after destroy: %v", err)
	}
	if len(dp.CapacityProviders) != 1 || dp.CapacityProviders[0].Status != types.CapacityProviderStatusInactive {
		t.Errorf("after destroy: providers %+v failures %+v; want e2e-nodes INACTIVE", dp.CapacityProviders, dp.Failures)
	}
	dc, err = sdk.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"e2e-cap"}})
	if err != nil {
		t.Fatalf("describe-clusters after destroy: %v", err)
	}
	if len(dc.Clusters) != 1 || aws.ToString(dc.Clusters[0].Status) != "INACTIVE" {
		t.Errorf("after destroy: clusters %+v failures %+v; want e2e-cap INACTIVE", dc.Clusters, dc.Failures)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
