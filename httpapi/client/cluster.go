package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// ClusterStatus is the response of GET /v1/sys/cluster.
type ClusterStatus struct {
	NodeID   string   `json:"nodeId"`
	LeaderID string   `json:"leaderId"`
	Members  []Member `json:"members"`
}

// Member is one node of the cluster, as the node that served the request
// records it.
type Member struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raftAddr"`
	GossipAddr string `json:"gossipAddr"`
	HTTPURL    string `json:"httpUrl"`
	Voter      bool   `json:"voter"`
	// InRaft is false for a node that gossip reports but that the leader
	// has not added to the Raft configuration yet.
	InRaft bool `json:"inRaft"`
	Alive  bool `json:"alive"`
	Leader bool `json:"leader"`
}

// LeaderTransfer is the response of a leadership transfer. LeaderID is
// empty when the node that served the request had not heard of the new
// leader yet.
type LeaderTransfer struct {
	PreviousLeaderID string `json:"previousLeaderId"`
	LeaderID         string `json:"leaderId"`
}

// SnapshotRestore is the response of a snapshot restore.
type SnapshotRestore struct {
	Restored     bool   `json:"restored"`
	Bytes        int64  `json:"bytes"`
	AppliedIndex uint64 `json:"appliedIndex"`
}

// NotLeaderError is the 409 response of a route that only the leader
// serves, such as a snapshot restore. LeaderURL is the leader's API URL;
// resend the request there.
type NotLeaderError struct {
	*APIError
	LeaderID  string
	LeaderURL string
}

func (e *NotLeaderError) Unwrap() error { return e.APIError }

// ClusterStatus returns the members of the cluster. It needs a token that
// may read.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	var out ClusterStatus
	if err := c.call(ctx, http.MethodGet, nil, &out, "sys", "cluster"); err != nil {
		return nil, fmt.Errorf("cluster status: %w", err)
	}
	return &out, nil
}

// RemoveMember removes a node that is gone for good from the cluster. The
// server responds 409 ([ErrConflict]) while the node still runs. It needs an
// owner token scoped to every vault.
func (c *Client) RemoveMember(ctx context.Context, nodeID string) error {
	if err := c.call(ctx, http.MethodDelete, nil, nil, "sys", "cluster", "members", nodeID); err != nil {
		return fmt.Errorf("remove member %s: %w", nodeID, err)
	}
	return nil
}

// TransferLeadership makes the leader hand over to another voter. It
// needs an owner token scoped to every vault.
func (c *Client) TransferLeadership(ctx context.Context) (*LeaderTransfer, error) {
	var out LeaderTransfer
	if err := c.call(ctx, http.MethodPost, emptyObject, &out, "sys", "cluster", "transfer-leadership"); err != nil {
		return nil, fmt.Errorf("transfer leadership: %w", err)
	}
	return &out, nil
}

// SaveSnapshot streams a snapshot of the whole state into w and returns
// the number of bytes written. It needs an owner token scoped to every
// vault.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (int64, error) {
	req, err := c.transport.newRequest(ctx, http.MethodPost, "/v1/sys/snapshot", []byte("{}"))
	if err != nil {
		return 0, err
	}
	c.authorize(req)
	resp, err := c.transport.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("save snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := readBounded(resp.Body)
		return 0, fmt.Errorf("save snapshot: %w", newAPIError(req.Method, req.URL.Path, resp.StatusCode, resp.Header, body))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("save snapshot: read stream after %d bytes: %w", n, err)
	}
	return n, nil
}

// SaveSnapshotFile saves a snapshot to path with mode 0600, through a
// temporary file in the same folder that is renamed once complete.
func (c *Client) SaveSnapshotFile(ctx context.Context, path string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".partial-*")
	if err != nil {
		return 0, fmt.Errorf("save snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := c.SaveSnapshot(ctx, tmp)
	if closeErr := tmp.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("save snapshot: %w", closeErr)
	}
	if err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("save snapshot: %w", err)
	}
	return n, nil
}

// RestoreSnapshot replaces the state of the whole cluster with a snapshot
// that SaveSnapshot wrote. Only the leader restores. Another node responds
// with a [*NotLeaderError] that carries the leader's URL. It needs an owner
// token scoped to every vault.
func (c *Client) RestoreSnapshot(ctx context.Context, snapshot []byte) (*SnapshotRestore, error) {
	req, err := c.transport.newRequest(ctx, http.MethodPost, "/v1/sys/snapshot/restore", snapshot)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	c.authorize(req)
	resp, err := c.transport.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("restore snapshot: %w", err)
	}
	defer resp.Body.Close()
	body, err := readBounded(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("restore snapshot: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := newAPIError(req.Method, req.URL.Path, resp.StatusCode, resp.Header, body)
		if apiErr.Status == http.StatusConflict && apiErr.Code == "not_leader" {
			return nil, fmt.Errorf("restore snapshot: %w", notLeaderError(apiErr, body))
		}
		return nil, fmt.Errorf("restore snapshot: %w", apiErr)
	}
	var out SnapshotRestore
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("restore snapshot: decode response: %w", err)
	}
	return &out, nil
}

func notLeaderError(apiErr *APIError, body []byte) *NotLeaderError {
	var shape struct {
		LeaderID  string `json:"leaderId"`
		LeaderURL string `json:"leaderUrl"`
	}
	_ = json.Unmarshal(body, &shape)
	return &NotLeaderError{APIError: apiErr, LeaderID: shape.LeaderID, LeaderURL: shape.LeaderURL}
}

// authorize sets the Bearer token when the client has one.
func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
}
