package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

func newClusterCmd(g *globalOptions) *cobra.Command {
	members := &cobra.Command{
		Use:   "members",
		Short: "List the nodes of the cluster as the node at --addr sees them",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			status, err := c.ClusterStatus(cmd.Context())
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(status, func(w io.Writer) error {
				return printMembers(w, status.Members)
			})
		},
	}

	remove := &cobra.Command{
		Use:   "remove NODE_ID",
		Short: "Remove a node that is gone for good from the cluster",
		Long: "Remove a node that is gone for good from the Raft configuration. Stop the\n" +
			"node first: the server refuses to remove a node that is still running,\n" +
			"because the leader would add it back. Needs an owner token of every vault.",
		Args: exactArgs("NODE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			err = c.RemoveMember(cmd.Context(), args[0])
			if errors.Is(err, client.ErrConflict) {
				return withHints(err, "stop the node, wait until `keyward cluster members` shows it not alive, then retry")
			}
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(map[string]string{"removed": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "removed %s\n", args[0])
				return err
			})
		},
	}

	transfer := &cobra.Command{
		Use:   "transfer-leadership",
		Short: "Make the leader hand over to another voter",
		Long: "Make the leader hand over to the most up-to-date voter, for example before\n" +
			"maintenance on the leader's host. Needs an owner token of every vault.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			res, err := c.TransferLeadership(cmd.Context())
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(res, func(w io.Writer) error {
				return record(w, []field{
					{"previous leader", orDash(res.PreviousLeaderID)},
					{"leader", orDash(res.LeaderID)},
				})
			})
		},
	}
	return newGroupCmd("cluster", "Inspect and manage the nodes of the cluster",
		members, remove, transfer, newTLSInitCmd())
}

func printMembers(w io.Writer, members []client.Member) error {
	rows := make([][]string, 0, len(members))
	for _, m := range members {
		role := "non-voter"
		switch {
		case !m.InRaft:
			role = "joining"
		case m.Leader:
			role = "leader"
		case m.Voter:
			role = "voter"
		}
		rows = append(rows, []string{m.ID, role, strconv.FormatBool(m.Alive), orDash(m.RaftAddr), orDash(m.HTTPURL)})
	}
	return table(w, []string{"ID", "ROLE", "ALIVE", "RAFT ADDRESS", "API URL"}, rows)
}

// clientCertTLS returns a TLS configuration that presents the client
// certificate in certFile and keyFile when a server requests one. The files
// are read at the handshake, so an unreadable file fails the request with
// a message that names it.
func clientCertTLS(certFile, keyFile string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("load --client-cert-file %s and --client-key-file %s: %w", certFile, keyFile, err)
			}
			return &pair, nil
		},
	}
}
