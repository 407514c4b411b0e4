package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The node group API (JSON 1.1 beside the ECS API, same listener and
// signature); the ECS SDK has no client for it.
const nodeGroupsTarget = "EcsdNodeGroups_20261101."

type nodeGroup struct {
	Name                string `json:"name"`
	AutoScalingGroupArn string `json:"autoScalingGroupArn"`
	DesiredCapacity     int    `json:"desiredCapacity"`
	Status              string `json:"status"`
	Nodes               []struct {
		ID                   string   `json:"id"`
		State                string   `json:"state"`
		ContainerInstanceArn string   `json:"containerInstanceArn"`
		ProtectedFromScaleIn bool     `json:"protectedFromScaleIn"`
		LaunchedAt           *float64 `json:"launchedAt"` // epoch seconds
	} `json:"nodes"`
}

// nodeGroupCall makes one signed call of the node group API.
func nodeGroupCall(ctx context.Context, endpoint, op string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", nodeGroupsTarget+op)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", op, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// describeNodeGroup returns the group, or nil when it no longer exists.
func describeNodeGroup(ctx context.Context, endpoint, name string) (*nodeGroup, error) {
	var out struct {
		NodeGroups []nodeGroup `json:"nodeGroups"`
	}
	if err := nodeGroupCall(ctx, endpoint, "DescribeNodeGroups", map[string]any{"names": []string{name}}, &out); err != nil {
		return nil, err
	}
	if len(out.NodeGroups) == 0 {
		return nil, nil
	}
	return &out.NodeGroups[0], nil
}
