package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// tlsInitOptions are the flags of `keyward cluster tls-init`.
type tlsInitOptions struct {
	out     string
	nodes   []string
	hosts   []string
	clients []string
	days    int
}

func newTLSInitCmd() *cobra.Command {
	var o tlsInitOptions
	cmd := &cobra.Command{
		Use:   "tls-init",
		Short: "Write a CA, node certificates and a gossip key for a new cluster",
		Long: "Write the files that secure a new cluster into --out:\n" +
			"  ca.pem, ca-key.pem        a new ECDSA P-256 CA (keep ca-key.pem offline)\n" +
			"  NODE.pem, NODE-key.pem    a certificate per --nodes entry, for the cluster\n" +
			"                            port (mutual TLS) and the HTTPS API\n" +
			"  CLIENT.pem, CLIENT-key.pem a client certificate per --clients entry, for\n" +
			"                            the admin plane with --tls-client-ca-file\n" +
			"  gossip.key                a 32-byte memberlist encryption key\n\n" +
			"Node certificates are valid for localhost, 127.0.0.1, ::1, the node id, the\n" +
			"name " + clusterServerName + " and every --hosts entry. Give each node its own\n" +
			"certificate and key, and every node the same ca.pem and gossip.key.\n" +
			"Existing files are never overwritten.",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.run(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote a CA, %d node certificates, %d client certificates and a gossip key to %s\n",
				len(o.nodes), len(o.clients), o.out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.out, "out", "", "Folder to write the files into; it is created with mode 0700 when missing.")
	f.StringSliceVar(&o.nodes, "nodes", nil, "Comma-separated node ids (as given to --node-id) to issue node certificates for.")
	f.StringSliceVar(&o.hosts, "hosts", nil, "Comma-separated extra IP addresses and DNS names that every node certificate covers.")
	f.StringSliceVar(&o.clients, "clients", nil, "Comma-separated names to issue admin client certificates for.")
	f.IntVar(&o.days, "days", 825, "Validity of node and client certificates in days; the CA is valid ten years.")
	return cmd
}

func (o *tlsInitOptions) validate() error {
	if o.out == "" {
		return usageErrorf("--out is required: the folder for the CA, certificates and gossip key")
	}
	if len(o.nodes) == 0 {
		return usageErrorf("--nodes is required: the node ids to issue certificates for, such as node1,node2,node3")
	}
	if o.days < 1 || o.days > 3650 {
		return usageErrorf("--days %d is out of range; use 1 to 3650", o.days)
	}
	seen := map[string]bool{"ca": true, "gossip": true}
	for _, name := range append(append([]string{}, o.nodes...), o.clients...) {
		if !isFileSafeName(name) {
			return usageErrorf("name %q may hold only letters, digits, '.', '_' and '-', and must not start with '.'", name)
		}
		if seen[name] {
			return usageErrorf("name %q appears twice or clashes with ca or gossip; give every node and client its own name", name)
		}
		seen[name] = true
	}
	return nil
}

func (o *tlsInitOptions) run() error {
	if err := o.validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o700); err != nil {
		return fmt.Errorf("create --out folder %s: %w", o.out, err)
	}
	ca, err := newCertAuthority("Keyward cluster CA", 10*365*24*time.Hour)
	if err != nil {
		return err
	}
	caKey, err := ca.keyPEM()
	if err != nil {
		return err
	}
	if err := o.write("ca.pem", ca.certPEM, 0o644); err != nil {
		return err
	}
	if err := o.write("ca-key.pem", caKey, 0o600); err != nil {
		return err
	}
	validity := time.Duration(o.days) * 24 * time.Hour
	for _, node := range o.nodes {
		if err := o.issue(ca, node, nodeHosts(node, o.hosts), roleNode, validity); err != nil {
			return err
		}
	}
	for _, client := range o.clients {
		if err := o.issue(ca, client, nil, roleClient, validity); err != nil {
			return err
		}
	}
	gossip, err := newGossipKeyText()
	if err != nil {
		return err
	}
	return o.write("gossip.key", gossip, 0o600)
}

func (o *tlsInitOptions) issue(ca *certAuthority, name string, hosts []string, role certRole, validity time.Duration) error {
	certPEM, keyPEM, err := ca.issue(name, hosts, role, validity)
	if err != nil {
		return err
	}
	if err := o.write(name+".pem", certPEM, 0o644); err != nil {
		return err
	}
	return o.write(name+"-key.pem", keyPEM, 0o600)
}

func (o *tlsInitOptions) write(name string, data []byte, mode os.FileMode) error {
	return writeNewFile(filepath.Join(o.out, name), data, mode)
}

// isFileSafeName reports whether name can be used as a file name prefix
// on every platform.
func isFileSafeName(name string) bool {
	if name == "" || len(name) > 128 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
