package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// The SDK client costs a few hundred microseconds of CPU per call (middleware,
// signing, JSON), and on a small machine it shares the cores with the server
// under test, so it caps what can be measured. --client raw replays a request
// the SDK built and signed once, byte for byte, with plain net/http: the
// figures then show the server rather than the client. It works with servers
// that accept a signature for a while (ecsd dev auth, moto), not with strict
// replay protection.

// rawRequest is one captured SDK request.
type rawRequest struct {
	url    string
	header http.Header
	body   []byte
}

// capturer records the last request it forwards.
type capturer struct {
	base *http.Client
	mu   sync.Mutex
	last *rawRequest
}

func (c *capturer) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	c.mu.Lock()
	c.last = &rawRequest{url: req.URL.String(), header: req.Header.Clone(), body: body}
	c.mu.Unlock()
	return c.base.Do(req)
}

// captureRaw runs op once per distinct request of the cell through an SDK
// client that records the signed request, so the raw client sends exactly what
// the SDK sends. It returns one request per worker.
func captureRaw(ctx context.Context, t *target, name string, n int) ([]*rawRequest, error) {
	cap := &capturer{base: t.http}
	c := ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(t.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
		HTTPClient:   cap,
		Retryer:      aws.NopRetryer{},
	})
	reqs := make([]*rawRequest, n)
	for w := range reqs {
		if w > 0 && !perWorker[name] {
			reqs[w] = reqs[0]
			continue
		}
		if err := opTable[name](ctx, c, slot{Clients: n, Worker: w}); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		reqs[w] = cap.last
	}
	return reqs, nil
}

// rawCall replays r.
func (t *target) rawCall(ctx context.Context, r *rawRequest) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	req.Header = r.header.Clone()
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return &httpStatusError{code: resp.StatusCode, typ: resp.Header.Get("X-Amzn-ErrorType"), body: string(body)}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// httpStatusError is a non-200 answer to a raw request.
type httpStatusError struct {
	code int
	typ  string
	body string
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d %s: %s", e.code, e.typ, e.body) }
