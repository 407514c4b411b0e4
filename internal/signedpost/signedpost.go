// Package signedpost sends a SigV4-signed POST to an ecsd server's own
// endpoints (the node group API, the Spot interruption endpoint): they take
// the same signatures as the ECS API on the same listener (signing name
// "ecs"), but no AWS SDK has a client for them.
package signedpost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Request is one call.
type Request struct {
	URL string
	// Target is the X-Amz-Target header of a JSON 1.1 call ("" for none).
	Target      string
	Body        []byte
	Credentials aws.Credentials
	Region      string
	// Client defaults to one with a one-minute timeout.
	Client *http.Client
}

// Do signs and sends r, returning the status and body of the answer.
func Do(ctx context.Context, r Request) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return 0, nil, err
	}
	if r.Target != "" {
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", r.Target)
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256(r.Body)
	if err := v4.NewSigner().SignHTTP(ctx, r.Credentials, req, hex.EncodeToString(sum[:]), "ecs", r.Region, time.Now()); err != nil {
		return 0, nil, fmt.Errorf("sign request: %w", err)
	}
	client := r.Client
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
