package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/fsm"
	"github.com/keyward/keyward/httpapi/client"
)

// snapshotTimeout is the time limit of a snapshot command when --timeout
// is not set, because a large snapshot takes longer than an API call.
const snapshotTimeout = 10 * time.Minute

func newSnapshotCmd(g *globalOptions) *cobra.Command {
	var force bool
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of the whole cluster state to FILE (mode 0600)",
		Long: "Save a snapshot of the whole cluster state to FILE, with mode 0600. The node\n" +
			"at --addr first catches up with the leader, so the snapshot holds every\n" +
			"write acknowledged before the command. Secret values stay encrypted under\n" +
			"the root key; keep the root key file to be able to use the snapshot. Needs\n" +
			"an owner token of every vault. An existing FILE is replaced only with --force.",
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSnapshotTarget(args[0], force); err != nil {
				return err
			}
			c, err := snapshotClient(cmd, g)
			if err != nil {
				return err
			}
			n, err := c.SaveSnapshotFile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			index, err := verifySnapshotFile(args[0])
			if err != nil {
				return err
			}
			out := map[string]any{"file": args[0], "bytes": n, "appliedIndex": index}
			return g.printer(cmd).emit(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "saved %d bytes at applied index %d to %s\n", n, index, args[0])
				return err
			})
		},
	}

	save.Flags().BoolVar(&force, "force", false, "Replace FILE when it already exists.")

	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the state of the whole cluster with the snapshot in FILE",
		Long: "Replace the state of the whole cluster with a snapshot that `keyward snapshot\n" +
			"save` wrote. Every change made after the snapshot is lost, admin tokens\n" +
			"included. Only the leader restores: when --addr is another node, the command\n" +
			"sends the snapshot to the leader's API URL. Needs an owner token of every vault.",
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read snapshot: %w", err)
			}
			if _, _, err := fsm.VerifySnapshot(data); err != nil {
				return withHints(fmt.Errorf("%s: %w", args[0], err), "the file is damaged or not a snapshot; save a new one with `keyward snapshot save`")
			}
			c, err := snapshotClient(cmd, g)
			if err != nil {
				return err
			}
			res, err := restoreOnLeader(cmd, g, c, data)
			if err != nil {
				return err
			}
			return g.printer(cmd).emit(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "restored %d bytes; the cluster is at applied index %d\n", res.Bytes, res.AppliedIndex)
				return err
			})
		},
	}
	return newGroupCmd("snapshot", "Save and restore snapshots of the cluster state", save, restore)
}

// checkSnapshotTarget rejects a FILE argument of snapshot save that names
// a directory, or an existing file unless force is set, before anything is
// downloaded. Other stat errors are left to the save, which reports them.
func checkSnapshotTarget(path string, force bool) error {
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return nil
	case info.IsDir():
		return withHints(fmt.Errorf("%s is a directory; name a file", path),
			"for example `keyward snapshot save "+filepath.Join(path, "keyward.snapshot")+"`")
	case !force:
		return withHints(fmt.Errorf("%s already exists; snapshot save does not replace it without --force", path),
			"name another file, or pass --force to replace this one")
	}
	return nil
}

// snapshotClient returns an admin client whose time limit is
// snapshotTimeout unless --timeout was set.
func snapshotClient(cmd *cobra.Command, g *globalOptions) (*client.Client, error) {
	if f := cmd.Flag("timeout"); f != nil && !f.Changed {
		g.timeout = snapshotTimeout
	}
	return g.adminClient(true)
}

// restoreOnLeader restores through c and, when that node is not the
// leader, once more through the leader's API URL that it named.
func restoreOnLeader(cmd *cobra.Command, g *globalOptions, c *client.Client, data []byte) (*client.SnapshotRestore, error) {
	res, err := c.RestoreSnapshot(cmd.Context(), data)
	var notLeader *client.NotLeaderError
	if !errors.As(err, &notLeader) {
		return res, err
	}
	if notLeader.LeaderURL == "" {
		return nil, withHints(err, "run the command with --addr set to the leader's API URL; `keyward cluster members` lists it")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s is not the leader; sending the snapshot to %s\n", c.BaseURL(), notLeader.LeaderURL)
	token, err := g.readToken()
	if err != nil {
		return nil, err
	}
	leader, err := client.New(notLeader.LeaderURL, g.clientOptions(client.WithToken(token))...)
	if err != nil {
		return nil, err
	}
	return leader.RestoreSnapshot(cmd.Context(), data)
}

// verifySnapshotFile checks the checksum of a saved snapshot and returns
// its applied index. A file that fails the check is removed, so no damaged
// backup is left behind.
func verifySnapshotFile(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read saved snapshot: %w", err)
	}
	index, _, err := fsm.VerifySnapshot(data)
	if err != nil {
		os.Remove(path)
		return 0, withHints(fmt.Errorf("saved snapshot %s failed its check and was removed: %w", path, err),
			"the stream was cut short; run the command again")
	}
	return index, nil
}
