package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseBytes bounds the body read from any response. The largest
// expected response is a machine-plane export (secret values are at most
// 12 KiB each), so 128 MiB leaves room for about ten thousand secrets.
const maxResponseBytes = 128 << 20

// transport sends requests to one base URL and turns responses into values or
// an *APIError. It is shared by the operator and the machine clients.
type transport struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	http      *http.Client
	userAgent string
}

func newTransport(baseURL string, s *settings) (*transport, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	hc, err := s.buildHTTPClient()
	if err != nil {
		return nil, err
	}
	return &transport{base: base, http: hc, userAgent: s.userAgent}, nil
}

// parseBaseURL checks that raw is an http or https URL with a host and no
// query, fragment or credentials, and returns it without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalidArgf("base URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", invalidArgf("base URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", invalidArgf("base URL %q has no host", raw)
	}
	if u.User != nil {
		return "", invalidArgf("base URL %q contains credentials; pass the token with WithToken", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", invalidArgf("base URL %q must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newRequest builds a request for path, which starts with "/" and is
// already escaped. body is the exact bytes to send, and nil sends no body.
func (t *transport) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, invalidArgf("request path %q must start with /", path)
	}

	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, reader)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}

	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", t.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send performs req and decodes a 2xx JSON response into out (when out is
// not nil and the body is not empty). Any other status becomes an *APIError.
func (t *transport) send(req *http.Request, out any) error {
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	body, err := readBounded(resp.Body)
	if err != nil {
		return fmt.Errorf("read response of %s %s: %w", req.Method, req.URL.Path, err)
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newAPIError(req.Method, req.URL.Path, resp.StatusCode, resp.Header, body)
	}
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

func readBounded(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("response is larger than %d bytes", maxResponseBytes)
	}
	return body, nil
}

// encodeBody returns the JSON of in, nil for a nil in, and the bytes
// themselves for a json.RawMessage.
func encodeBody(in any) ([]byte, error) {
	switch v := in.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return v, nil
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode request body: %w", err)
	}
	return body, nil
}

// routePath joins escaped segments into "/v1/seg/seg…". Each segment is an
// identifier or name taken from a caller, so an empty one or a dot segment
// is rejected rather than sent: either would address a different route.
func routePath(segments ...string) (string, error) {
	var b strings.Builder
	b.WriteString("/v1")
	for _, seg := range segments {
		if seg == "" || seg == "." || seg == ".." {
			return "", invalidArgf("path segment %q after %s is empty or a dot segment; an id argument is missing or invalid", seg, b.String())
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	return b.String(), nil
}
