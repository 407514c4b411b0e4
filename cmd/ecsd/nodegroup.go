package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ecsd/ecsd/agent/node"
	"github.com/ecsd/ecsd/apiserver"
	"github.com/ecsd/ecsd/internal/signedpost"
)

// `ecsd nodegroup`: a small client of the node group API (apiserver/nodegroups.go),
// signed like any ECS call with the AWS_* credentials of the environment.

type nodeGroupClient struct {
	endpoint string
	region   string
}

func (c *nodeGroupClient) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "http://127.0.0.1:8080", "the ecsd server's URL (env ECSD_ENDPOINT)")
	fs.StringVar(&c.region, "region", "", "region to sign for (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1)")
}

// call sends one node group operation and decodes its answer into out.
func (c *nodeGroupClient) call(ctx context.Context, op string, in, out any) error {
	return c.post(ctx, "/", apiserver.NodeGroupsTargetPrefix+"."+op, in, out)
}

// post sends in as JSON to path (with the X-Amz-Target target, if any),
// signed with the environment's credentials, and decodes the answer into out.
func (c *nodeGroupClient) post(ctx context.Context, path, target string, in, out any) error {
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return fmt.Errorf("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to sign requests")
	}
	region := c.region
	for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" {
			region = os.Getenv(env)
		}
	}
	if region == "" {
		region = "us-east-1"
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
	status, b, err := signedpost.Do(ctx, signedpost.Request{URL: strings.TrimRight(c.endpoint, "/") + path,
		Target: target, Body: body, Credentials: creds, Region: region})
	if err != nil {
		return fmt.Errorf("%s: %w", c.endpoint, err)
	}
	if status != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) == nil && e.Type != "" {
			return fmt.Errorf("%s: %s", e.Type, e.Message)
		}
		return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

func printJSON(cmd *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return err
}

func nodegroupCmd() *cobra.Command {
	var c nodeGroupClient
	root := &cobra.Command{
		Use:   "nodegroup",
		Short: "Manage node groups (ecsd's Auto Scaling groups) on an ecsd server",
	}
	c.register(root.PersistentFlags())
	// prep takes the endpoint from ECSD_ENDPOINT unless given (only that one:
	// a provisioner script's ECSD_CPU and the like must not become flags).
	prep := func(cmd *cobra.Command) error {
		if v, ok := os.LookupEnv("ECSD_ENDPOINT"); ok && !cmd.Flags().Changed("endpoint") {
			c.endpoint = v
		}
		return nil
	}

	var cr apiserver.CreateNodeGroupRequest
	var wait time.Duration
	var minSize, maxSize, desired, cpu int
	var memory int64
	var zones, attrs string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a node group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prep(cmd); err != nil {
				return err
			}
			cr.Name = args[0]
			fl := cmd.Flags()
			cr.MinSize, cr.MaxSize = &minSize, &maxSize
			if fl.Changed("desired") {
				cr.DesiredCapacity = &desired
			}
			if fl.Changed("cpu") {
				cr.CPU = &cpu
			}
			if fl.Changed("memory") {
				cr.Memory = &memory
			}
			if zones != "" {
				cr.AvailabilityZones = strings.Split(zones, ",")
			}
			if attrs != "" {
				m, err := node.ParseAttributes(attrs)
				if err != nil {
					return fmt.Errorf("--attributes: %w", err)
				}
				cr.Attributes = m
			}
			var out apiserver.NodeGroupResponse
			if err := c.call(cmd.Context(), apiserver.OpCreateNodeGroup, &cr, &out); err != nil {
				return err
			}
			if wait > 0 {
				if err := c.waitSettled(cmd, cr.Name, wait); err != nil {
					return err
				}
			}
			return printJSON(cmd, out)
		},
	}
	fs := create.Flags()
	fs.StringVar(&cr.Cluster, "cluster", "", "cluster name or ARN the nodes join (default: default)")
	fs.IntVar(&minSize, "min", 0, "minimum number of nodes")
	fs.IntVar(&maxSize, "max", 0, "maximum number of nodes (required)")
	fs.IntVar(&desired, "desired", 0, "desired number of nodes (default: --min)")
	fs.StringVar(&cr.InstanceType, "instance-type", "", "instance type of the nodes (default: ecsd.medium)")
	fs.IntVar(&cpu, "cpu", 0, "CPU units each node offers (default: the instance type's)")
	fs.Int64Var(&memory, "memory", 0, "MiB each node offers (default: the instance type's)")
	fs.StringVar(&zones, "availability-zones", "", "comma-separated zones used in turn (default: <region>a)")
	fs.StringVar(&attrs, "attributes", "", "custom attributes of every node: name=value,name2=value2")
	_ = create.MarkFlagRequired("max")
	create.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until the group has its desired nodes in service, showing progress (e.g. 5m)")

	describe := &cobra.Command{
		Use:   "describe [NAME|ARN...]",
		Short: "Describe node groups (all when none are named)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prep(cmd); err != nil {
				return err
			}
			var out apiserver.DescribeNodeGroupsResponse
			if err := c.call(cmd.Context(), apiserver.OpDescribeNodeGroups, &apiserver.DescribeNodeGroupsRequest{Names: args}, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List node groups with their sizes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prep(cmd); err != nil {
				return err
			}
			var out apiserver.DescribeNodeGroupsResponse
			if err := c.call(cmd.Context(), apiserver.OpDescribeNodeGroups, &apiserver.DescribeNodeGroupsRequest{}, &out); err != nil {
				return err
			}
			type row struct {
				Name            string `json:"name"`
				Cluster         string `json:"cluster"`
				Status          string `json:"status"`
				MinSize         int    `json:"minSize"`
				MaxSize         int    `json:"maxSize"`
				DesiredCapacity int    `json:"desiredCapacity"`
				Nodes           int    `json:"nodes"`
				InService       int    `json:"inService"`
			}
			rows := []row{}
			for _, g := range out.NodeGroups {
				r := row{Name: g.Name, Cluster: g.Cluster, Status: g.Status, MinSize: g.MinSize, MaxSize: g.MaxSize, DesiredCapacity: g.DesiredCapacity, Nodes: len(g.Nodes)}
				for _, n := range g.Nodes {
					if n.State == "InService" {
						r.InService++
					}
				}
				rows = append(rows, r)
			}
			return printJSON(cmd, map[string]any{"nodeGroups": rows})
		},
	}

	var upMin, upMax, upDesired int
	update := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a node group's min, max or desired count",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prep(cmd); err != nil {
				return err
			}
			in := apiserver.UpdateNodeGroupRequest{Name: args[0]}
			fl := cmd.Flags()
			if fl.Changed("min") {
				in.MinSize = &upMin
			}
			if fl.Changed("max") {
				in.MaxSize = &upMax
			}
			if fl.Changed("desired") {
				in.DesiredCapacity = &upDesired
			}
			var out apiserver.NodeGroupResponse
			if err := c.call(cmd.Context(), apiserver.OpUpdateNodeGroup, &in, &out); err != nil {
				return err
			}
			if wait > 0 {
				if err := c.waitSettled(cmd, in.Name, wait); err != nil {
					return err
				}
			}
			return printJSON(cmd, out)
		},
	}
	update.Flags().IntVar(&upMin, "min", 0, "new minimum")
	update.Flags().IntVar(&upMax, "max", 0, "new maximum")
	update.Flags().IntVar(&upDesired, "desired", 0, "new desired count")
	update.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until the group has its desired nodes in service, showing progress (e.g. 5m)")

	var force bool
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a node group (its nodes are removed first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prep(cmd); err != nil {
				return err
			}
			var out apiserver.NodeGroupResponse
			if err := c.call(cmd.Context(), apiserver.OpDeleteNodeGroup, &apiserver.DeleteNodeGroupRequest{Name: args[0], ForceDelete: force}, &out); err != nil {
				return err
			}
			return printJSON(cmd, out)
		},
	}
	del.Flags().BoolVar(&force, "force", false, "remove nodes even while they run tasks")

	root.AddCommand(create, describe, list, update, del)
	return root
}

// waitSettled polls the group until exactly its desired count of nodes is in
// service and none is pending or terminating, printing each change of
// progress on stderr.
func (c *nodeGroupClient) waitSettled(cmd *cobra.Command, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
	defer cancel()
	last := ""
	for {
		var out apiserver.DescribeNodeGroupsResponse
		if err := c.call(ctx, apiserver.OpDescribeNodeGroups, &apiserver.DescribeNodeGroupsRequest{Names: []string{name}}, &out); err != nil {
			return err
		}
		if len(out.NodeGroups) != 1 {
			return fmt.Errorf("node group %s is gone", name)
		}
		g := out.NodeGroups[0]
		states := map[string]int{}
		var lastErr string
		for _, n := range g.Nodes {
			states[n.State]++
			if n.LastError != "" {
				lastErr = n.LastError
			}
		}
		line := fmt.Sprintf("%s: %d/%d nodes in service, %d pending, %d terminating", name, states["InService"], g.DesiredCapacity, states["Pending"], states["Terminating"])
		if lastErr != "" {
			line += " (last error: " + lastErr + ")"
		}
		if line != last {
			fmt.Fprintln(cmd.ErrOrStderr(), line)
			last = line
		}
		if states["InService"] == g.DesiredCapacity && len(g.Nodes) == g.DesiredCapacity {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node group %s did not settle within %s: %s", name, timeout, line)
		case <-time.After(time.Second):
		}
	}
}
