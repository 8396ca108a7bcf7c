// Command etcd is the unmodified upstream etcd server, built from the
// go.etcd.io/etcd/server/v3 module for tlsboot's test control plane.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
