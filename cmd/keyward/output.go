package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// printer writes a command's result in the --output format.
type printer struct {
	w      io.Writer
	format string
}

func (g *globalOptions) printer(cmd *cobra.Command) printer {
	return printer{w: cmd.OutOrStdout(), format: g.output}
}

func (p printer) json() bool { return p.format == outputJSON }

// printJSON writes v as indented JSON followed by a newline.
func (p printer) printJSON(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// emit writes v as JSON, or calls text for the text format.
func (p printer) emit(v any, text func(w io.Writer) error) error {
	if p.json() {
		return p.printJSON(v)
	}
	return text(p.w)
}

// table writes rows under a header, aligned in columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// field is one "name  value" line of a record.
type field struct{ name, value string }

// record writes fields as aligned name and value lines.
func record(w io.Writer, fields []field) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

// formatMillis formats Unix milliseconds as RFC 3339 in UTC, and zero
// (not set) as "-".
func formatMillis(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// orDash returns s, or "-" for an empty s, so table columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOrDash(items []string) string {
	return orDash(strings.Join(items, ","))
}
