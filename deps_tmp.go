package main
import (
 _ "github.com/hashicorp/raft"
 _ "github.com/cockroachdb/pebble/v2"
 _ "github.com/hashicorp/go-plugin"
 _ "github.com/tarm/serial"
 _ "github.com/spf13/cobra"
 _ "github.com/hashicorp/hcl/v2"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/creack/pty"
 _ "pgregory.net/rapid"
 _ "google.golang.org/grpc"
 _ "google.golang.org/protobuf/proto"
 _ "github.com/hashicorp/go-hclog"
 _ "github.com/zclconf/go-cty/cty"
)
func main(){}
