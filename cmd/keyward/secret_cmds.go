package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/httpapi/client"
)

// maxValueFileBytes bounds --value-file reads. The server stores at most
// 12 KiB per value and rejects more with a clear message, so this bound
// only stops the CLI from reading a huge file by mistake.
const maxValueFileBytes = 1 << 20

// valueFlags are the three exclusive ways to give a secret's content.
type valueFlags struct {
	value     string
	valueFile string
	fields    []string
}

func (v *valueFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&v.value, "value", "", "Plain secret value; prefer --value-file, as command lines are visible to other users.")
	f.StringVar(&v.valueFile, "value-file", "", "File with the plain secret value, stored byte for byte (a trailing newline included); - reads stdin.")
	f.StringArrayVar(&v.fields, "field", nil, "One field of a structured secret as NAME=VALUE; repeat the flag for each field.")
}

// read returns the secret content that the flags describe.
func (v *valueFlags) read(cmd *cobra.Command) (client.SecretValue, error) {
	set := 0
	for _, name := range []string{"value", "value-file", "field"} {
		if cmd.Flags().Changed(name) {
			set++
		}
	}
	if set != 1 {
		return client.SecretValue{}, usageErrorf("give the content with exactly one of --value, --value-file or --field")
	}

	switch {
	case cmd.Flags().Changed("field"):
		fields, err := parseFields(v.fields)
		return client.SecretValue{Fields: fields}, err
	case cmd.Flags().Changed("value-file"):
		value, err := readValueFile(cmd, v.valueFile)
		return client.SecretValue{Value: value}, err
	}
	return client.SecretValue{Value: v.value}, nil
}

func parseFields(pairs []string) (map[string]string, error) {
	fields := make(map[string]string, len(pairs))
	for _, pair := range pairs {
		name, value, ok := strings.Cut(pair, "=")
		if !ok || name == "" {
			return nil, usageErrorf("--field %q is not NAME=VALUE", pair)
		}
		if _, dup := fields[name]; dup {
			return nil, usageErrorf("--field %s is given twice", name)
		}
		fields[name] = value
	}
	return fields, nil
}

func readValueFile(cmd *cobra.Command, path string) (string, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("read --value-file: %w", err)
		}
		defer f.Close()
		r = f
	}

	data, err := io.ReadAll(io.LimitReader(r, maxValueFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("read --value-file %s: %w", path, err)
	}
	if len(data) > maxValueFileBytes {
		return "", fmt.Errorf("--value-file %s is larger than %d bytes", path, maxValueFileBytes)
	}
	if !utf8.Valid(data) {
		return "", withHints(fmt.Errorf("--value-file %s is not UTF-8 text", path),
			"secret values are text; encode binary data, for example with base64, before storing it")
	}
	return string(data), nil
}

func newSecretCmd(g *globalOptions) *cobra.Command {
	var vaultID, projectID string

	var createValue valueFlags
	create := &cobra.Command{
		Use:   "create NAME (--value V | --value-file F | --field NAME=VALUE ...)",
		Short: "Create a secret in a project",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "vault", "project"); err != nil {
				return err
			}
			content, err := createValue.read(cmd)
			if err != nil {
				return err
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			s, err := c.CreateSecret(cmd.Context(), vaultID, projectID, args[0], content)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(s, func(w io.Writer) error {
				return printSecrets(w, []client.Secret{*s})
			})
		},
	}
	createValue.register(create)
	create.Flags().StringVar(&projectID, "project", "", "Id of the project (proj_…).")

	var updateValue valueFlags
	update := &cobra.Command{
		Use:   "update SECRET_ID (--value V | --value-file F | --field NAME=VALUE ...)",
		Short: "Store a new version of a secret",
		Args:  exactArgs("SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "vault"); err != nil {
				return err
			}
			content, err := updateValue.read(cmd)
			if err != nil {
				return err
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			s, err := c.UpdateSecret(cmd.Context(), vaultID, args[0], content)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(s, func(w io.Writer) error {
				return printSecrets(w, []client.Secret{*s})
			})
		},
	}
	updateValue.register(update)

	list := &cobra.Command{
		Use:   "list",
		Short: "List the secrets of a project (names and versions, never values)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "vault", "project"); err != nil {
				return err
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			secrets, err := c.ListSecrets(cmd.Context(), vaultID, projectID)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(listJSON("secrets", secrets), func(w io.Writer) error {
				return printSecrets(w, secrets)
			})
		},
	}
	list.Flags().StringVar(&projectID, "project", "", "Id of the project (proj_…).")

	cmd := newGroupCmd("secret", "Create, update, roll back, delete and list secrets",
		create, update, newSecretRollbackCmd(g, &vaultID), newSecretDeleteCmd(g, &vaultID), list)
	cmd.PersistentFlags().StringVar(&vaultID, "vault", "", "Id of the vault (vault_…).")
	return cmd
}

func newSecretRollbackCmd(g *globalOptions, vaultID *string) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "rollback SECRET_ID --version N",
		Short: "Store the value of an earlier version as a new version",
		Args:  exactArgs("SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd, "vault", "version"); err != nil {
				return err
			}
			c, err := g.adminClient(true)
			if err != nil {
				return err
			}
			s, err := c.RollbackSecret(cmd.Context(), *vaultID, args[0], version)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(s, func(w io.Writer) error {
				return printSecrets(w, []client.Secret{*s})
			})
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "Earlier version whose value becomes the new current version.")
	return cmd
}

func newSecretDeleteCmd(g *globalOptions, vaultID *string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete SECRET_ID",
		Short: "Delete a secret with every version and grant; the value cannot be recovered",
		Args:  exactArgs("SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.vaultAdminClient(cmd)
			if err != nil {
				return err
			}
			res, err := c.DeleteSecret(cmd.Context(), *vaultID, args[0])
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted secret %s; removed its grant from %d machines\n", res.ID, len(res.RevokedGrants))
				if c := describeConfirmation(res.Confirmation); c != "" && err == nil {
					_, err = fmt.Fprintf(w, "confirmed by %s\n", c)
				}
				return err
			})
		},
	}
}

func printSecrets(w io.Writer, secrets []client.Secret) error {
	rows := make([][]string, 0, len(secrets))
	for _, s := range secrets {
		rows = append(rows, []string{
			s.ID, s.Name, orDash(s.Type), strconv.Itoa(s.Version),
			joinOrDash(s.FieldNames), formatMillis(s.UpdatedAt),
		})
	}
	return table(w, []string{"ID", "NAME", "TYPE", "VERSION", "FIELDS", "UPDATED"}, rows)
}
