// Command fakecri serves the CRI on a unix socket with the in-memory runtime of
// k8s.io/cri-client/pkg/fake, so a real kubelet can start on a machine without a
// container engine. It runs no containers: the tests use it only so that the
// kubelet gets past its runtime checks and bootstraps its certificates.
//
//	fakecri unix:///path/to/cri.sock
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/cri-client/pkg/fake"
)

func main() {
	if len(os.Args) != 2 || !strings.HasPrefix(os.Args[1], "unix://") {
		fmt.Fprintln(os.Stderr, "usage: fakecri unix:///path/to/cri.sock")
		os.Exit(2)
	}
	endpoint := os.Args[1]
	// Subscribe before serving so a signal sent right after the socket appears is not lost.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	rt := fake.NewFakeRemoteRuntime()
	if err := rt.Start(endpoint); err != nil {
		fmt.Fprintf(os.Stderr, "fakecri: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "fakecri: serving %s\n", endpoint)
	s := <-sigs
	rt.Stop()
	// grpc's Stop closes the listener, which unlinks the socket; remove it anyway in
	// case the listener did not own the path.
	_ = os.Remove(strings.TrimPrefix(endpoint, "unix://"))
	fmt.Fprintf(os.Stderr, "fakecri: stopped on %v\n", s)
}
