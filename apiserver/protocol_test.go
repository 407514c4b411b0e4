package apiserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/ecsd/ecsd/internal/testenv"
)

func TestUnimplementedOperationIsTyped(t *testing.T) {
	env := testenv.Start(t)
	_, err := env.ECS.ListClusters(context.Background(), &ecs.ListClustersInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error, got %v", err)
	}
	t.Logf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
}
