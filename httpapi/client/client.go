package client

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
)

// Client calls the admin plane and the unauthenticated system routes as an
// operator. It is safe for concurrent use.
type Client struct {
	transport *transport
	token     string

	idemPrefix string
	writes     atomic.Int64
}

// New returns a client for the API at baseURL, for example
// "http://127.0.0.1:8200". Options set the admin token, TLS trust, timeout
// and User-Agent; New fails on an invalid URL, a token that cannot be sent
// in a header, or an unreadable CA file.
func New(baseURL string, opts ...Option) (*Client, error) {
	s := collectSettings(opts)
	if err := checkToken(s.token); err != nil {
		return nil, err
	}
	t, err := newTransport(baseURL, &s)
	if err != nil {
		return nil, err
	}
	return &Client{transport: t, token: s.token, idemPrefix: s.idemPrefix}, nil
}

// BaseURL returns the API address without a trailing slash.
func (c *Client) BaseURL() string { return c.transport.base }

// Do sends one request to path (starting with "/", escaped, and it may
// carry a query) with in encoded as the JSON body, and decodes a 2xx JSON
// response into out. A nil in sends no body; a json.RawMessage is sent as
// is; a nil out discards the response. A non-2xx response returns an
// *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	body, err := encodeBody(in)
	if err != nil {
		return err
	}
	req, err := c.transport.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if key := idempotencyKeyFrom(ctx); key != "" {
		req.Header.Set(HeaderIdempotencyKey, key)
	} else if c.idemPrefix != "" && method != http.MethodGet && method != http.MethodHead {
		n := c.writes.Add(1)
		req.Header.Set(HeaderIdempotencyKey, c.idemPrefix+"-"+strconv.FormatInt(n, 10))
	}
	return c.transport.send(req, out)
}

// call sends a request to the route made of segments (see routePath).
func (c *Client) call(ctx context.Context, method string, in, out any, segments ...string) error {
	path, err := routePath(segments...)
	if err != nil {
		return err
	}
	return c.Do(ctx, method, path, in, out)
}

// checkToken rejects a token that would corrupt the Authorization header.
func checkToken(token string) error {
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return invalidArgf("admin token contains a space, control or non-ASCII character at byte %d; check the token file for stray characters", i)
		}
	}
	return nil
}

// emptyObject is sent as the body of action routes that take no input, so
// a server that always decodes JSON receives "{}" rather than an empty body.
var emptyObject = struct{}{}
