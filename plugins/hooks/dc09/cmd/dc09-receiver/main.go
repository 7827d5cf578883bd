// Command dc09-receiver runs the DC-09 receiver emulator (package dc09test): it ACKs every readable
// frame on TCP and UDP and prints what it receives. For trying the dc09 hook without a receiving centre.
//
//	dc09-receiver -listen 127.0.0.1:9000 [-key HEX]
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/skjold-alarm/skjold/plugins/hooks/dc09/dc09test"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "host:port for TCP and UDP")
	keyHex := flag.String("key", "", "AES key in hex (16, 24 or 32 bytes)")
	flag.Parse()
	var key []byte
	if *keyHex != "" {
		var err error
		if key, err = hex.DecodeString(*keyHex); err != nil {
			fmt.Fprintln(os.Stderr, "dc09-receiver: -key:", err)
			os.Exit(2)
		}
	}
	r, err := dc09test.Start(*listen, key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dc09-receiver:", err)
		os.Exit(1)
	}
	defer r.Close()
	fmt.Printf("dc09-receiver: tcp %s udp %s\n", r.TCPAddr(), r.UDPAddr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for {
		g, err := r.Next(ctx)
		if err != nil {
			return
		}
		if g.Err != nil {
			fmt.Printf("%s %q: unreadable (%v), answered %s\n", g.Transport, g.Raw, g.Err, g.Answer)
			continue
		}
		f := g.Frame
		fmt.Printf("%s %s seq %s R%s L%s #%s [%s] %v encrypted=%v -> %s\n", g.Transport, f.ID, f.Seq, f.Receiver, f.Line, f.Account, f.Data, f.Extended, f.Encrypted, g.Answer)
	}
}
