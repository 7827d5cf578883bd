package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/cluster/pki"
	"github.com/skjold-alarm/skjold/core/api"
)

func clusterCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Make the cluster's certificates and manage its members",
	}

	var dir string
	var nodes []string
	initCmd := &cobra.Command{
		Use:   "init --dir DIR --node ID=HOST[,HOST...] ...",
		Short: "Make the cluster CA and a certificate for each node",
		Long: "Writes DIR/ca.crt, DIR/ca.key and DIR/<id>.crt, DIR/<id>.key for every --node. Copy ca.crt and a node's\n" +
			"own .crt and .key to that node, and keep ca.key off the nodes (it is only needed to add nodes later).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			specs, err := nodeSpecs(nodes)
			if err != nil {
				return err
			}
			if len(specs) == 0 {
				return fmt.Errorf("--node: at least one node is required")
			}
			if err := pki.Init(dir, specs); err != nil {
				return err
			}
			for _, s := range specs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, %s\n", s.ID, dir+"/"+s.ID+".crt", dir+"/"+s.ID+".key")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cluster CA: %s/ca.crt (keep %s/ca.key off the nodes)\n", dir, dir)
			return nil
		},
	}
	initCmd.Flags().StringVar(&dir, "dir", ".", "directory to write the CA and certificates to")
	initCmd.Flags().StringArrayVar(&nodes, "node", nil, "a node and the names or addresses it is reached at: ID=HOST[,HOST...]")

	var certDir string
	var certNode string
	certCmd := &cobra.Command{
		Use:   "cert --dir DIR --node ID=HOST[,HOST...]",
		Short: "Make a certificate for a new node with the existing cluster CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			specs, err := nodeSpecs([]string{certNode})
			if err != nil {
				return err
			}
			if err := pki.Issue(certDir, specs[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s/%s.crt, %s/%s.key\n", specs[0].ID, certDir, specs[0].ID, certDir, specs[0].ID)
			return nil
		},
	}
	certCmd.Flags().StringVar(&certDir, "dir", ".", "directory holding ca.crt and ca.key")
	certCmd.Flags().StringVar(&certNode, "node", "", "the new node: ID=HOST[,HOST...]")

	members := &cobra.Command{
		Use:   "members",
		Short: "List the cluster's members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printMembers(cmd, c, "GET", "/v1/cluster/members", nil)
		},
	}
	join := &cobra.Command{
		Use:   "join ID ADDR",
		Short: "Add the node ID, reached at ADDR (its raft listen address), to the cluster",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(api.JoinRequest{ID: args[0], Addr: args[1]})
			return printMembers(cmd, c, "POST", "/v1/cluster/members", body)
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Take the node ID out of the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return printMembers(cmd, c, "DELETE", "/v1/cluster/members/"+url.PathEscape(args[0]), nil)
		},
	}
	transfer := &cobra.Command{
		Use:   "transfer-leadership [ID]",
		Short: "Hand leadership to the node ID, or to any other node",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.LeadershipRequest
			if len(args) == 1 {
				req.To = args[0]
			}
			body, _ := json.Marshal(req)
			return printMembers(cmd, c, "POST", "/v1/cluster/leadership", body)
		},
	}
	cmd.AddCommand(initCmd, certCmd, members, join, remove, transfer)
	return cmd
}

func printMembers(cmd *cobra.Command, c *client, method, path string, body []byte) error {
	var out struct {
		Members []api.Member `json:"members"`
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if err := c.do(method, path, rd, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tVOTER\tLEADER")
	for _, m := range out.Members {
		leader := ""
		if m.Leader {
			leader = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", m.ID, m.Addr, m.Voter, leader)
	}
	return tw.Flush()
}

// nodeSpecs parses --node ID=HOST[,HOST...].
func nodeSpecs(args []string) ([]pki.NodeSpec, error) {
	var out []pki.NodeSpec
	seen := map[string]bool{}
	for _, a := range args {
		id, hosts, ok := strings.Cut(a, "=")
		if !ok || id == "" || hosts == "" {
			return nil, fmt.Errorf("--node %q: expected ID=HOST[,HOST...], e.g. n1=skjold1.politiet.local,10.0.0.11", a)
		}
		if seen[id] {
			return nil, fmt.Errorf("--node %q: node %s is named twice", a, id)
		}
		seen[id] = true
		var hs []string
		for _, h := range strings.Split(hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hs = append(hs, h)
			}
		}
		out = append(out, pki.NodeSpec{ID: id, Hosts: hs})
	}
	return out, nil
}
