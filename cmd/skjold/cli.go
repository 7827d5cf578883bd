package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skjold-alarm/skjold/core/alarm"
	"github.com/skjold-alarm/skjold/core/api"
	"github.com/skjold-alarm/skjold/core/device"
	"github.com/skjold-alarm/skjold/core/order"
)

// client talks to a node's API.
type client struct {
	base string
	user string
}

// apiError is an error answer from the API.
type apiError struct {
	Status int
	Err    api.Error
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Err.Code, e.Err.Message)
	if e.Err.Field != "" && !strings.HasPrefix(e.Err.Message, e.Err.Field) {
		s += " (field " + e.Err.Field + ")"
	}
	return s
}

func (c *client) do(method, path string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, strings.TrimRight(c.base, "/")+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.Header.Set("X-Skjold-User", c.user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the node at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error api.Error `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return &apiError{Status: resp.StatusCode, Err: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

func (c *client) post(path string, in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(http.MethodPost, path, bytes.NewReader(b), out)
}

func printJSON(w io.Writer, raw json.RawMessage) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		w.Write(raw)
		return
	}
	buf.WriteByte('\n')
	w.Write(buf.Bytes())
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// ---- order ----

func orderCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{Use: "order", Short: "Register, list and end orders"}
	var file string
	create := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create an order from a JSON file (- for standard input)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.do(http.MethodPost, "/v1/orders", bytes.NewReader(data), &raw); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), raw)
			return nil
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "order JSON (see docs/api.md)")
	create.MarkFlagRequired("file")
	list := &cobra.Command{
		Use: "list", Short: "List orders", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Orders []order.Order }
			if err := c.do(http.MethodGet, "/v1/orders", nil, &out); err != nil {
				return err
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "ID\tREFERENCE\tSTATE\tOFFENDER\tPROTECTED\tZONES\tVALID UNTIL")
			for _, o := range out.Orders {
				until := "-"
				if o.ValidUntil != nil {
					until = ts(*o.ValidUntil)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", o.ID, o.Reference, o.State, o.Offender.Device, len(o.Protected), len(o.Zones), until)
			}
			return w.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show an order", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := c.do(http.MethodGet, "/v1/orders/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), raw)
			return nil
		},
	}
	var reason string
	end := &cobra.Command{
		Use: "end ID --reason TEXT", Short: "End an order", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o order.Order
			if err := c.post("/v1/orders/"+url.PathEscape(args[0])+"/end", api.ByReason{By: c.user, Reason: reason}, &o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "order %s %s (version %d)\n", o.ID, o.State, o.Version)
			return nil
		},
	}
	end.Flags().StringVar(&reason, "reason", "", "why the order ends")
	cmd.AddCommand(create, list, show, end)
	return cmd
}

// ---- alarm ----

func alarmCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{Use: "alarm", Short: "List, acknowledge, resolve and watch alarms"}
	var all bool
	var orderID string
	list := &cobra.Command{
		Use: "list", Short: "List open alarms (--all for every alarm)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if all {
				q.Set("state", "all")
			}
			if orderID != "" {
				q.Set("order", orderID)
			}
			var out struct{ Alarms []alarm.Alarm }
			if err := c.do(http.MethodGet, "/v1/alarms?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "ID\tKIND\tCLASS\tSEVERITY\tSTATE\tACTIVE\tORDER\tRAISED\tMESSAGE")
			for _, a := range out.Alarms {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", a.ID, a.Kind, a.Class, a.Severity, a.State, a.Active, a.OrderID, ts(a.RaisedAt), a.Message)
			}
			return w.Flush()
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include resolved alarms")
	list.Flags().StringVar(&orderID, "order", "", "only this order's alarms")
	ack := alarmActionCmd(c, "ack", "Acknowledge an alarm (silences the siren when no other police alarm waits)", "note", "a note for the audit trail")
	resolve := alarmActionCmd(c, "resolve", "Resolve an alarm", "reason", "why it is resolved")
	var since string
	watch := &cobra.Command{
		Use: "watch", Short: "Print alarm transitions as they happen", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/alarms/events"
			if since != "" {
				path += "?since=" + url.QueryEscape(since)
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, strings.TrimRight(c.base, "/")+path, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("cannot reach the node at %s: %w", c.base, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("event stream: %s", resp.Status)
			}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				data, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				var ev api.Event
				var body struct {
					Alarm      alarm.Alarm      `json:"alarm"`
					Transition alarm.Transition `json:"transition"`
				}
				if json.Unmarshal([]byte(data), &ev) != nil || json.Unmarshal([]byte(data), &body) != nil {
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), FormatTransition(body.Alarm, body.Transition, ev.ActivePoliceAlarms))
			}
			return sc.Err()
		},
	}
	watch.Flags().StringVar(&since, "since", "", "replay transitions after this event id first")
	cmd.AddCommand(list, ack, resolve, watch)
	return cmd
}

// alarmActionCmd is `alarm ack` or `alarm resolve`: one POST with who acts and why.
func alarmActionCmd(c *client, verb, short, textFlag, textHelp string) *cobra.Command {
	var text string
	cmd := &cobra.Command{
		Use: verb + " ID", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := api.ByReason{By: c.user, Note: text}
			if textFlag == "reason" {
				body = api.ByReason{By: c.user, Reason: text}
			}
			var a alarm.Alarm
			if err := c.post("/v1/alarms/"+url.PathEscape(args[0])+"/"+verb, body, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "alarm %s %s by %s\n", a.ID, a.State, a.Last().By)
			return nil
		},
	}
	cmd.Flags().StringVar(&text, textFlag, "", textHelp)
	return cmd
}

// FormatTransition is one readable terminal line for an alarm transition.
func FormatTransition(a alarm.Alarm, t alarm.Transition, activePolice int) string {
	word := strings.ToUpper(string(t.Event))
	text := a.Message
	if t.Event == alarm.EventRestored && t.Note != "" {
		text = t.Note // what ended it, not what raised it
	}
	line := fmt.Sprintf("%s  %-12s %-16s %-9s %-8s %s  [%s]", t.At.Local().Format("15:04:05"), word, a.Kind, a.Class, a.Severity, text, a.ID)
	if t.Event != alarm.EventRaised && t.By != "" && t.By != "evaluator" {
		line += " by " + t.By
	}
	if t.Note != "" && t.Event != alarm.EventRestored {
		line += " (" + t.Note + ")"
	}
	return line + fmt.Sprintf("  police alarms waiting: %d", activePolice)
}

// ---- device ----

func deviceCmd(c *client) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Show devices bound to orders"}
	list := &cobra.Command{
		Use: "list", Short: "List devices", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct{ Devices []device.State }
			if err := c.do(http.MethodGet, "/v1/devices", nil, &out); err != nil {
				return err
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "DEVICE\tORDER\tROLE\tLAST SEEN\tLAST FIX\tBATTERY\tSTRAP\tDRIVER")
			for _, d := range out.Devices {
				fix, batt := "-", "-"
				if d.LastFix != nil {
					fix = fmt.Sprintf("%.5f,%.5f ±%.0fm", d.LastFix.Lat, d.LastFix.Lon, d.LastFix.AccuracyM)
				}
				if d.BatteryPct != nil {
					batt = fmt.Sprintf("%d%%", *d.BatteryPct)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Device, d.OrderID, d.Role, ts(d.LastSeen), fix, batt, orDash(string(d.Strap)), orDash(d.Driver))
			}
			return w.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a device", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := c.do(http.MethodGet, "/v1/devices/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), raw)
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---- health, plugin ----

func healthCmd(c *client) *cobra.Command {
	return &cobra.Command{
		Use: "health", Short: "Show a node's health (exit status 1 when degraded)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			resp, err := http.Get(strings.TrimRight(c.base, "/") + "/v1/health")
			if err != nil {
				return fmt.Errorf("cannot reach the node at %s: %w", c.base, err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			printJSON(cmd.OutOrStdout(), data)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("node is degraded (%s)", resp.Status)
			}
			return nil
		},
	}
}
