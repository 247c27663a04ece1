package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

// identityFlags select the machine identity of the machine-side commands.
type identityFlags struct {
	vaultID  string
	identity string
	home     string
}

func (f *identityFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.vaultID, "vault", "", "Vault whose identity to use, when several are registered on this host.")
	fs.StringVar(&f.identity, "identity", "", "Path to an identity.json (default: the only vault under the home folder).")
	fs.StringVar(&f.home, "home", "", "Folder that holds vaults/{vaultId}/identity.json (default ~/.keyward; SIKKERKEY_HOME is also read).")
}

// machineClient opens the selected identity. Requests go to the identity's
// apiUrl unless --addr (or KEYWARD_ADDR) was given.
func (f *identityFlags) machineClient(cmd *cobra.Command, g *globalOptions) (*client.MachineClient, error) {
	search := client.IdentitySearch{VaultID: f.vaultID, IdentityPath: f.identity, Home: f.home}
	path, err := search.Resolve()
	if err != nil {
		return nil, withIdentityHints(err)
	}

	opts := g.clientOptions()
	if cmd.Flags().Changed("addr") {
		opts = append(opts, client.WithBaseURL(g.addr))
	}
	mc, err := client.OpenMachineClient(path, opts...)
	if err != nil {
		return nil, err
	}
	return mc, nil
}

func withIdentityHints(err error) error {
	switch {
	case errors.Is(err, client.ErrNoIdentity):
		return withHints(err, "register this host first: keyward register TOKEN --api-url URL")
	case errors.Is(err, client.ErrAmbiguousIdentity):
		return withHints(err, "choose one with --vault VAULT_ID or --identity PATH")
	}
	return err
}

// withMachineHints explains machine-plane refusals.
func withMachineHints(err error) error {
	switch {
	case errors.Is(err, client.ErrUnauthorized):
		return withHints(err,
			"the server rejected this machine's signed request: the machine may be unknown or expired, "+
				"or this host's clock may differ from the server's by more than the allowed window (300 s by default)")
	case errors.Is(err, client.ErrForbidden):
		return withHints(err,
			"the machine may be pending, disabled or revoked, outside its guardrails, or without a grant for this secret; "+
				"an operator can check with `keyward machine get`")
	}
	return err
}

func newRegisterCmd(g *globalOptions) *cobra.Command {
	var apiURL, vaultID, hostname, home, name string
	var temp, enroll bool
	cmd := &cobra.Command{
		Use:   "register TOKEN [--api-url URL] [--temp|--enroll --vault VAULT_ID] [--hostname NAME]",
		Short: "Register this host as a machine with a bootstrap token (no openssl needed)",
		Long: "Register this host as a machine: generate an Ed25519 key, send its public\n" +
			"half with the single-use TOKEN, and write identity.json and private.pem\n" +
			"(PKCS#8) under ${KEYWARD_HOME:-~/.keyward}/vaults/{vaultId}/ with folders\n" +
			"0700 and files 0600. A temporary-machine token needs --temp and --vault;\n" +
			"an enrollment token, which registers an active ephemeral machine and\n" +
			"may be used by many hosts, needs --enroll and --vault.\n" +
			"An earlier identity of the same vault is renamed aside, never overwritten.",
		Args: exactArgs("TOKEN"),
		PreRunE: func(*cobra.Command, []string) error {
			if temp && enroll {
				return usageErrorf("--temp and --enroll exclude each other; pass the one that matches the token")
			}
			if temp && vaultID == "" {
				return usageErrorf("--temp needs --vault, the vault the temporary token was issued for")
			}
			if enroll && vaultID == "" {
				return usageErrorf("--enroll needs --vault, the vault the enrollment token was issued for")
			}
			if name != "" && !enroll {
				return usageErrorf("--name applies to --enroll only; the server names other machines")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if apiURL == "" {
				apiURL = g.addr
			}
			reg, err := client.RegisterMachine(cmd.Context(), client.RegisterRequest{
				APIURL: apiURL, Token: args[0], Temp: temp, Enroll: enroll, VaultID: vaultID,
				Name: name, Hostname: hostname, Home: home, Options: g.clientOptions(),
			})
			if errors.Is(err, client.ErrGone) || errors.Is(err, client.ErrUnauthorized) {
				// The server names a token of another kind and its route.
				if strings.Contains(err.Error(), "; register with ") {
					return withHints(err, "register with the flag the message names: none for a bootstrap token, --temp or --enroll with --vault")
				}
				return withHints(err, "the token expired, was revoked or was already used; ask an operator for a new one")
			}
			if err != nil {
				return err
			}
			return printRegistration(cmd, g, reg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&apiURL, "api-url", "", "URL of the Keyward API to register with (default: --addr).")
	f.BoolVar(&temp, "temp", false, "The token is a temporary-machine token.")
	f.BoolVar(&enroll, "enroll", false, "The token is an enrollment token for ephemeral machines.")
	f.StringVar(&vaultID, "vault", "", "Vault the temporary-machine or enrollment token was issued for (vault_…).")
	f.StringVar(&name, "name", "", "Machine name to ask for with --enroll (default: the host name).")
	f.StringVar(&hostname, "hostname", "", "Host name reported to the server (default: this host's name).")
	f.StringVar(&home, "home", "", "Folder that receives vaults/{vaultId}/ (default ~/.keyward).")
	return cmd
}

type registrationView struct {
	MachineID    string   `json:"machineId"`
	MachineName  string   `json:"machineName"`
	VaultID      string   `json:"vaultId"`
	APIURL       string   `json:"apiUrl"`
	IdentityPath string   `json:"identityPath"`
	ExpiresAt    int64    `json:"expiresAt,omitempty"`
	Replaced     []string `json:"replaced,omitempty"`
}

func printRegistration(cmd *cobra.Command, g *globalOptions, reg *client.Registration) error {
	id := reg.Identity
	view := registrationView{
		MachineID: id.MachineID, MachineName: id.MachineName, VaultID: id.VaultID,
		APIURL: id.APIURL, IdentityPath: id.Path(), ExpiresAt: reg.ExpiresAt, Replaced: reg.Replaced,
	}
	for _, path := range reg.Replaced {
		fmt.Fprintf(cmd.ErrOrStderr(), "kept the earlier identity file as %s\n", path)
	}
	return g.printer(cmd).emit(view, func(w io.Writer) error {
		fields := []field{
			{"machine id", id.MachineID},
			{"name", orDash(id.MachineName)},
			{"vault", id.VaultID},
			{"api url", id.APIURL},
			{"identity", id.Path()},
		}
		if reg.ExpiresAt != 0 {
			fields = append(fields, field{"expires", formatMillis(reg.ExpiresAt)})
		}
		return record(w, fields)
	})
}

func newGetCmd(g *globalOptions) *cobra.Command {
	var idf identityFlags
	cmd := &cobra.Command{
		Use:   "get SECRET_ID",
		Short: "Read a secret as this machine and print its value as is (no newline added)",
		Args:  exactArgs("SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			mc, err := idf.machineClient(cmd, g)
			if err != nil {
				return err
			}
			value, err := mc.GetSecret(cmd.Context(), args[0])
			if err != nil {
				return withMachineHints(err)
			}
			return g.printer(cmd).emit(map[string]string{"value": value}, func(w io.Writer) error {
				_, err := io.WriteString(w, value)
				return err
			})
		},
	}
	idf.register(cmd)
	return cmd
}

// machineSecretView is a listed secret with its field names as a JSON
// array rather than the wire form (a string that holds an array).
type machineSecretView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	ProjectID  string   `json:"projectId"`
	FieldNames []string `json:"fieldNames"`
}

func newSecretsCmd(g *globalOptions) *cobra.Command {
	var idf identityFlags
	var projectID string
	cmd := &cobra.Command{
		Use:   "secrets [--project PROJECT_ID]",
		Short: "List the secrets this machine may read (names only)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			mc, err := idf.machineClient(cmd, g)
			if err != nil {
				return err
			}
			var secrets []client.MachineSecret
			if projectID != "" {
				secrets, err = mc.ListProjectSecrets(cmd.Context(), projectID)
			} else {
				secrets, err = mc.ListSecrets(cmd.Context())
			}
			if err != nil {
				return withMachineHints(err)
			}

			views := make([]machineSecretView, 0, len(secrets))
			for _, s := range secrets {
				views = append(views, machineSecretView{ID: s.ID, Name: s.Name, ProjectID: s.ProjectID, FieldNames: s.FieldNames})
			}
			return g.printer(cmd).emit(listJSON("secrets", views), func(w io.Writer) error {
				rows := make([][]string, 0, len(views))
				for _, v := range views {
					rows = append(rows, []string{v.ID, v.Name, v.ProjectID, orDash(strings.Join(v.FieldNames, ","))})
				}
				return table(w, []string{"ID", "NAME", "PROJECT", "FIELDS"}, rows)
			})
		},
	}
	idf.register(cmd)
	cmd.Flags().StringVar(&projectID, "project", "", "List only the secrets of this project (proj_…).")
	return cmd
}
