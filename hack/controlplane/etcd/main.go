// Command etcd is etcd's own server entry point, built from the etcd Go
// module at the version Kubernetes pins, so the local control plane needs no
// prebuilt binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
